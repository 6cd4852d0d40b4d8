#!/bin/sh
# The GPU check of the CUDA backend (issue 9). One command, on a machine with an NVIDIA GPU, nvcc
# (CUDA 12.x/13.x) and the repository's usual build dependencies:
#
#   sh native/scripts/gpu-check.sh
#
# 1. builds the engine with CUDA into native/build/gpu (-DLONGTAIL_CUDA=ON);
# 2. correctness: test_cuda (every kernel, whole engine steps and greedy generation through the
#    Runtime + adapter pool, CUDA vs the CPU backend on random inputs; tolerances in
#    native/tests/test_cuda.cpp), the CPU unit tests with LONGTAIL_BACKEND=cpu, and test_forward /
#    test_runtime run against the CUDA backend (LONGTAIL_BACKEND=cuda, f32 weights, their own
#    tolerances);
# 3. kernel microbenchmarks against their bandwidth floor (test_cuda --bench);
# 4. end-to-end decode bench on a generated ~1B Llama (hidden 2048, 16 layers, 32/8 heads,
#    intermediate 8192, bf16 on disk): base-only vs a distinct rank-16 adapter per sequence
#    (`longtail-engine bench`), and the runtime's Zipf workload (`longtail-engine serve-bench`);
# 5. the same mixed-adapter decode through PEFT when python3 has torch (CUDA), transformers, peft;
# 6. writes bench/results/engine-cuda.json and prints a table.
#
# Exits 1 with "no CUDA device" where there is none, and non-zero when a correctness step fails
# (the benchmarks still run and are recorded). Environment: N_ADAPTERS (default 32), CONTEXT
# (default 512), REQUESTS (serve-bench, default 1000), SKIP_PEFT=1, BUILD_DIR.
set -eu
cd "$(dirname "$0")/../.."
ROOT="$PWD"
export PATH="$ROOT/.tools/node/package/bin:$PATH"
BUILD="${BUILD_DIR:-native/build/gpu}"
TMP=bench/tmp/engine-cuda
GEN="node libs/model-fixtures/src/cli.ts"
N_ADAPTERS="${N_ADAPTERS:-32}"
CONTEXT="${CONTEXT:-512}"
REQUESTS="${REQUESTS:-1000}"
OUT=bench/results/engine-cuda.json
mkdir -p "$TMP" bench/results

if command -v nvidia-smi >/dev/null 2>&1; then
  if ! nvidia-smi -L 2>/dev/null | grep -q GPU; then
    echo "gpu-check: no CUDA device (nvidia-smi lists no GPU)" >&2
    exit 1
  fi
elif ! ls /dev/nvidia[0-9]* >/dev/null 2>&1; then
  echo "gpu-check: no CUDA device (no nvidia-smi, no /dev/nvidia*)" >&2
  exit 1
fi
if ! command -v nvcc >/dev/null 2>&1 && [ ! -x /usr/local/cuda/bin/nvcc ]; then
  echo "gpu-check: nvcc not found (install the CUDA toolkit, 12.x or 13.x)" >&2
  exit 1
fi

echo "== build ($BUILD, CUDA on)"
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S native -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DLONGTAIL_CUDA=ON >/dev/null
fi
cmake --build "$BUILD" -j"$(nproc 2>/dev/null || echo 4)"
echo "ptxas summary: $BUILD/ptxas-info.txt"

FAIL=0
step() {  # name, command...: runs, records pass/fail in $TMP/steps.txt
  name="$1"
  shift
  echo "== $name"
  if "$@"; then
    echo "$name	pass" >>"$TMP/steps.txt"
  else
    echo "$name	FAIL" >>"$TMP/steps.txt"
    FAIL=1
  fi
}
: >"$TMP/steps.txt"

# Device present? test_cuda says SKIP when not.
if "$BUILD/test_cuda" --probe 2>/dev/null | grep -q "SKIP: no CUDA device"; then
  echo "gpu-check: no CUDA device ($("$BUILD/test_cuda" --probe 2>&1 | head -1))" >&2
  exit 1
fi

export OPENBLAS_NUM_THREADS=1
step "test_cuda (CUDA vs CPU: kernels, engine steps, runtime)" "$BUILD/test_cuda"
for t in safetensors loader kernels forward sampling adapter_pool runtime; do
  step "test_$t (CPU backend)" env LONGTAIL_BACKEND=cpu "$BUILD/test_$t"
done
for t in forward runtime; do
  step "test_$t (CUDA backend, f32 weights)" env LONGTAIL_BACKEND=cuda LONGTAIL_CUDA_WEIGHTS=f32 "$BUILD/test_$t"
done

echo "== kernel microbenchmarks"
"$BUILD/test_cuda" --bench "$TMP/kernels.json" || FAIL=1

echo "== ~1B model and adapters (bench/tmp, generated once)"
M="$TMP/model-1b"
if [ ! -f "$M/config.json" ]; then
  $GEN model --out "$M" --hidden 2048 --layers 16 --heads 32 --kv-heads 8 --intermediate 8192 \
    --vocab 32000 --dtype bf16 --seed 1 --max-pos 4096 >/dev/null
fi
ADAPTERS=""
i=1
while [ "$i" -le "$N_ADAPTERS" ]; do
  d="$TMP/adapter-r16-$i"
  if [ ! -f "$d/adapter_config.json" ]; then
    $GEN adapter --base "$M" --out "$d" --rank 16 --alpha 32 --modules all-linear --seed "$((100 + i))" \
      --dtype bf16 >/dev/null
  fi
  ADAPTERS="${ADAPTERS:+$ADAPTERS,}$d"
  i=$((i + 1))
done

echo "== decode bench (base-only vs distinct adapter per sequence)"
"$BUILD/longtail-engine" bench --model "$M" --adapters "$ADAPTERS" --batches 1,8,32 --context "$CONTEXT" \
  --skip-gemm-shapes --out "$TMP/decode.json" >/dev/null || FAIL=1

echo "== serve-bench (Zipf over 1,000 adapter names)"
"$BUILD/longtail-engine" serve-bench --model "$M" --adapters "$ADAPTERS" --requests "$REQUESTS" \
  --out "$TMP/serve.json" >/dev/null || FAIL=1

rm -f "$TMP/peft.json"
if [ "${SKIP_PEFT:-0}" != 1 ] && command -v python3 >/dev/null 2>&1 &&
  python3 -c "import torch, transformers, peft; assert torch.cuda.is_available()" 2>/dev/null; then
  echo "== PEFT baseline (mixed-adapter batch)"
  python3 native/scripts/peft-baseline.py --model "$M" --adapters "$ADAPTERS" --batches 1,8,32 \
    --context "$CONTEXT" --out "$TMP/peft.json" || echo "PEFT baseline failed (recorded as absent)"
else
  echo "== PEFT baseline skipped (needs python3 with torch+CUDA, transformers, peft)"
fi

node native/scripts/gpu-check-report.mjs "$TMP" "$OUT" "sh native/scripts/gpu-check.sh" "$BUILD/ptxas-info.txt"
if [ "$FAIL" != 0 ]; then
  echo "gpu-check: FAILED (see the steps above and $OUT)" >&2
  exit 1
fi
echo "gpu-check: ok"
