#!/bin/sh
# Engine runtime benchmark (issue 4): the ~100M-parameter model of bench/engine-cpu.sh and adapter
# folders of rank 8, 16 and 32 on all seven projections (FOLDERS per rank, default 16), then
# `longtail-engine serve-bench`: an open-loop Zipf(1) workload over 1,000 adapter names with a pool
# of 64 resident adapters, 128 prompt and 64 output tokens, against the same workload on the base
# model. Result: bench/results/engine-runtime.json. Extra options go to serve-bench, e.g.
#   sh bench/engine-runtime.sh --requests 2000 --rate 4
set -eu
cd "$(dirname "$0")/.."
. bench/engine-model.sh
FOLDERS="${FOLDERS:-16}"
ADAPTERS=""
for rank in 8 16 32; do
  i=1
  while [ "$i" -le "$FOLDERS" ]; do
    d="$TMP/runtime-r$rank-$i"
    if [ ! -f "$d/adapter_config.json" ]; then
      $GEN adapter --base "$TMP/model" --out "$d" --rank "$rank" --alpha "$((rank * 2))" --modules all-linear \
        --seed "$((1000 * rank + i))" >/dev/null
    fi
    ADAPTERS="${ADAPTERS:+$ADAPTERS,}$d"
    i=$((i + 1))
  done
done
native/build/release/longtail-engine serve-bench --model "$TMP/model" --adapters "$ADAPTERS" \
  --out bench/results/engine-runtime.json "$@" >/dev/null
echo "wrote bench/results/engine-runtime.json"
