#!/bin/sh
# Engine CPU benchmark: generates a ~100M-parameter Llama-style model (f32) and 32 rank-16 adapters
# on all seven projections into bench/tmp (gitignored), then runs `longtail-engine bench`.
# Result: bench/results/engine-cpu.json. Usage: sh bench/engine-cpu.sh [extra bench options]
set -eu
cd "$(dirname "$0")/.."
. bench/engine-model.sh
N_ADAPTERS="${N_ADAPTERS:-32}"
ADAPTERS=""
i=1
while [ "$i" -le "$N_ADAPTERS" ]; do
  d="$TMP/adapter-$i"
  if [ ! -f "$d/adapter_config.json" ]; then
    $GEN adapter --base "$TMP/model" --out "$d" --rank 16 --alpha 32 --modules all-linear --seed "$((100 + i))" >/dev/null
  fi
  ADAPTERS="${ADAPTERS:+$ADAPTERS,}$d"
  i=$((i + 1))
done
native/build/release/longtail-engine bench --model "$TMP/model" --adapters "$ADAPTERS" \
  --batches 1,8,32 --context 128 --out bench/results/engine-cpu.json "$@" >/dev/null
echo "wrote bench/results/engine-cpu.json"
