// Assembles the GPU check's results (native/scripts/gpu-check.sh) into one JSON file and prints a
// table. Usage: node gpu-check-report.mjs TMPDIR OUT.json COMMAND PTXAS_INFO
// Decode rooflines are recomputed for the GPU: bytes = base weights as the CUDA backend stores them
// (bf16: 2 bytes/parameter) + distinct adapters' bytes (f32) + KV bytes (f32, context positions per
// sequence), over the measured device copy bandwidth; FLOPs over the measured bf16 GEMM peak.
import fs from 'node:fs';
import os from 'node:os';

const [tmp, out, command, ptxas] = process.argv.slice(2);
const read = (f) => {
  try {
    return JSON.parse(fs.readFileSync(`${tmp}/${f}`, 'utf8'));
  } catch {
    return null;
  }
};
const steps = fs.existsSync(`${tmp}/steps.txt`)
  ? fs.readFileSync(`${tmp}/steps.txt`, 'utf8').trim().split('\n').filter(Boolean).map((l) => {
      const [name, result] = l.split('\t');
      return { name, result };
    })
  : [];
const kernels = read('kernels.json');
const decode = read('decode.json');
const serve = read('serve.json');
const peft = read('peft.json');

const bw = kernels ? kernels.copy_bandwidth_GBps * 1e9 : NaN;
const peak = kernels ? kernels.gemm_peak_TFLOPS * 1e12 : NaN;
const gpuDecode = [];
if (decode && Array.isArray(decode.decode)) {
  const m = decode.model;
  const kvDim = m.num_key_value_heads * m.head_dim;
  const adapterBytes = decode.adapters ? decode.adapters.bytes_each : 0;
  for (const r of decode.decode) {
    const base = m.parameters * 2;
    const adapters = r.mode === 'adapters' ? r.batch * adapterBytes : r.mode === 'naive' ? r.batch * adapterBytes : 0;
    const kv = r.batch * r.context * m.num_hidden_layers * 2 * kvDim * 4;
    // naive: one step per adapter, each reading the base weights again.
    const bytes = (r.mode === 'naive' ? r.batch * base : base) + adapters + kv;
    const tMem = bytes / bw;
    const tFlop = (r.GFLOP * 1e9) / peak;
    const roof = Math.max(tMem, tFlop) * 1e3;
    gpuDecode.push({
      batch: r.batch,
      mode: r.mode,
      step_ms: r.step_ms,
      tokens_per_s: r.tokens_per_s,
      gpu_roofline_ms: roof,
      x_gpu_roofline: r.step_ms / roof,
      bound: tMem >= tFlop ? 'memory' : 'compute',
    });
  }
}
let peftVsLongtail = null;
if (peft && Array.isArray(peft.rows)) {
  peftVsLongtail = {};
  for (const p of peft.rows.filter((r) => r.mode === 'peft_mixed_adapters')) {
    const ours = gpuDecode.find((r) => r.batch === p.batch && r.mode === 'adapters');
    if (ours) peftVsLongtail[p.batch] = ours.tokens_per_s / p.tokens_per_s;
  }
}
const result = {
  command,
  date: new Date().toISOString(),
  host: os.hostname(),
  device: kernels ? kernels.device : null,
  gemm_library: kernels ? kernels.gemm_library : null,
  correctness: steps,
  copy_bandwidth_GBps: kernels ? kernels.copy_bandwidth_GBps : null,
  gemm_peak_TFLOPS: kernels ? kernels.gemm_peak_TFLOPS : null,
  kernels: kernels ? kernels.kernels : null,
  decode: gpuDecode,
  decode_raw: decode,
  serve_bench: serve,
  peft: peft ?? 'not run (needs python3 with torch+CUDA, transformers, peft)',
  longtail_vs_peft_mixed_adapter_throughput: peftVsLongtail,
  ptxas_info: ptxas && fs.existsSync(ptxas) ? fs.readFileSync(ptxas, 'utf8').split('\n# raw')[0] : null,
};
fs.writeFileSync(out, JSON.stringify(result, null, 2) + '\n');

const pad = (s, n) => String(s).padEnd(n);
const num = (x, d = 2) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '-');
console.log(`\nGPU check on ${result.device ?? '?'} (GEMM: ${result.gemm_library ?? '?'})`);
for (const s of steps) console.log(`  ${pad(s.result, 5)} ${s.name}`);
if (kernels) {
  console.log(`\ncopy bandwidth ${num(kernels.copy_bandwidth_GBps, 0)} GB/s, bf16 GEMM peak ${num(kernels.gemm_peak_TFLOPS, 1)} TFLOPS`);
  console.log(`${pad('kernel', 56)} ${pad('ms', 9)} ${pad('floor ms', 9)} x floor`);
  for (const k of kernels.kernels) console.log(`${pad(k.kernel, 56)} ${pad(num(k.ms, 4), 9)} ${pad(num(k.floor_ms, 4), 9)} ${num(k.x_floor)}`);
}
if (gpuDecode.length) {
  console.log(`\n${pad('decode', 18)} ${pad('step ms', 9)} ${pad('tok/s', 9)} ${pad('roof ms', 9)} x roofline`);
  for (const r of gpuDecode)
    console.log(`${pad(`B=${r.batch} ${r.mode}`, 18)} ${pad(num(r.step_ms), 9)} ${pad(num(r.tokens_per_s, 0), 9)} ${pad(num(r.gpu_roofline_ms), 9)} ${num(r.x_gpu_roofline)} (${r.bound})`);
}
if (serve) console.log(`\nserve-bench: ${JSON.stringify(serve.throughput_vs_base ?? serve.summary ?? {}).slice(0, 300)}`);
if (peftVsLongtail) console.log(`longtail / PEFT mixed-adapter tokens/s: ${JSON.stringify(peftVsLongtail)}`);
console.log(`\nwrote ${out}`);
