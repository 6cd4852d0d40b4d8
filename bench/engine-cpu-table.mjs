// Prints the markdown table for bench/README.md from bench/results/engine-cpu.json.
import { readFileSync } from 'node:fs';

const r = JSON.parse(readFileSync(process.argv[2] ?? 'bench/results/engine-cpu.json', 'utf8'));
const f = (x, d = 1) => Number(x).toFixed(d);
const lines = [];
lines.push(
  `Machine: ${r.machine.cpu}, ${r.machine.cores} cores (${r.machine.threads} threads used); date ${r.date}.`,
);
lines.push(
  `Model: ${r.model.parameters.toLocaleString('en')} parameters (hidden ${r.model.hidden_size}, ${r.model.num_hidden_layers} layers, ${r.model.num_attention_heads} heads / ${r.model.num_key_value_heads} kv heads, intermediate ${r.model.intermediate_size}, vocab ${r.model.vocab_size}, ${r.model.dtype}); ${r.adapters.count} adapters of rank ${r.adapters.rank} on ${r.adapters.targets.join(', ')} (${f(r.adapters.bytes_each / 1e6)} MB each).`,
);
lines.push(
  `Measured in the same run: copy bandwidth ${f(r.copy_bandwidth_GBps, 2)} GB/s, f32 GEMM peak ${f(r.gemm_peak_GFLOPS)} GFLOP/s (${r.gemm_peak_shape}).`,
);
lines.push(
  `Prefill: ${f(r.prefill.tokens_per_s)} tokens/s (${r.prefill.sequences} × ${r.prefill.tokens_per_sequence} tokens, ${r.prefill.tokens_per_step} tokens per step, ${f(r.prefill.GFLOPS)} GFLOP/s).`,
);
lines.push('');
lines.push(
  '| batch | mode | step ms | tokens/s | context | MB read | GFLOP | roofline ms (bound) | × roofline |',
);
lines.push('|---:|---|---:|---:|---:|---:|---:|---:|---:|');
for (const d of r.decode) {
  lines.push(
    `| ${d.batch} | ${d.mode} | ${f(d.step_ms)} | ${f(d.tokens_per_s)} | ${f(d.context, 0)} | ${f(d.bytes_read_MB, 0)} | ${f(d.GFLOP, 2)} | ${f(d.roofline_ms)} (${d.roofline_bound}) | ${f(d.x_roofline, 2)} |`,
  );
}
lines.push('');
lines.push(
  `Batched (every sequence on a different adapter) vs naive (one adapter at a time): ${Object.entries(
    r.batched_vs_naive_speedup,
  )
    .map(([b, s]) => `batch ${b}: ${f(s, 1)}×`)
    .join(', ')}.`,
);
if (r.batch_invariance_cost) {
  const c = r.batch_invariance_cost;
  lines.push('');
  lines.push(
    `Batch invariance (main rows above: batch_invariant ${r.batch_invariant ? 'on' : 'off'}). Same steps on an engine with it on and one with it off, alternately in this run (median of ${c.iters} steps each; decode batch ≥ 8 base runs the same kernels in both modes, so its ratio is the noise of the run):`,
  );
  lines.push('');
  lines.push('| step | invariant on | off | on / off |');
  lines.push('|---|---:|---:|---:|');
  lines.push(
    `| prefill (${c.prefill.tokens} tokens, ${c.prefill.tokens_per_step} a step) | ${f(c.prefill.invariant_tokens_per_s)} tokens/s | ${f(c.prefill.off_tokens_per_s)} tokens/s | ${f(c.prefill.ratio_time, 2)}× time |`,
  );
  for (const d of c.decode)
    lines.push(`| decode batch ${d.batch} ${d.mode} | ${f(d.invariant_ms)} ms | ${f(d.off_ms)} ms | ${f(d.ratio, 2)}× |`);
}
console.log(lines.join('\n'));
