#!/usr/bin/env python3
"""PEFT baseline of the GPU check (native/scripts/gpu-check.sh): decode steps of a batch in which
every sequence uses a different LoRA adapter, through PEFT's mixed-adapter batch
(`adapter_names=` in the forward call), and the same batch on the base model. bf16 weights,
KV cache of `--context` random prompt tokens, greedy next tokens. Writes JSON rows like
`longtail-engine bench`'s decode rows."""
import argparse
import json
import time

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--adapters", required=True)
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    dirs = a.adapters.split(",")
    base = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.bfloat16).cuda().eval()
    model = PeftModel.from_pretrained(base, dirs[0], adapter_name="a0")
    for i, d in enumerate(dirs[1:], 1):
        model.load_adapter(d, adapter_name=f"a{i}")
    vocab = base.config.vocab_size
    rows = []
    for b in [int(x) for x in a.batches.split(",")]:
        names = [f"a{i % len(dirs)}" for i in range(b)]
        for mode in ("peft_base", "peft_mixed_adapters"):
            kw = {"adapter_names": names} if mode == "peft_mixed_adapters" else {"adapter_names": ["__base__"] * b}
            ids = torch.randint(0, vocab, (b, a.context), device="cuda")
            with torch.no_grad():
                out = model(input_ids=ids, use_cache=True, **kw)
                past = out.past_key_values
                tok = out.logits[:, -1].argmax(-1, keepdim=True)
                out = model(input_ids=tok, past_key_values=past, use_cache=True, **kw)  # warm-up step
                past = out.past_key_values
                tok = out.logits[:, -1].argmax(-1, keepdim=True)
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                for _ in range(a.steps):
                    out = model(input_ids=tok, past_key_values=past, use_cache=True, **kw)
                    past = out.past_key_values
                    tok = out.logits[:, -1].argmax(-1, keepdim=True)
                torch.cuda.synchronize()
                dt = (time.perf_counter() - t0) / a.steps
            rows.append({"batch": b, "mode": mode, "context": a.context, "step_ms": dt * 1e3, "tokens_per_s": b / dt})
            print(f"PEFT B={b} {mode}: {dt * 1e3:.2f} ms/step, {b / dt:.0f} tok/s")
    with open(a.out, "w") as f:
        json.dump({"torch": torch.__version__, "device": torch.cuda.get_device_name(0), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
