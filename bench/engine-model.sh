# Sourced by the engine benchmarks: PATH with the project's Node, the engine built, and the
# ~100M-parameter Llama-style f32 model generated once into $TMP/model (bench/tmp is gitignored).
export PATH="$PWD/.tools/node/package/bin:$PATH"
TMP=bench/tmp/engine-cpu
GEN="node libs/model-fixtures/src/cli.ts"
mkdir -p "$TMP" bench/results
(cd native && sh scripts/build.sh >/dev/null)
if [ ! -f "$TMP/model/config.json" ]; then
  $GEN model --out "$TMP/model" --hidden 768 --layers 12 --heads 12 --kv-heads 4 --intermediate 2048 \
    --vocab 32000 --dtype f32 --seed 1 --tied --max-pos 4096 >/dev/null
fi
