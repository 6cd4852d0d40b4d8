#!/bin/sh
# Engine tests: ASan+UBSan build (clang) of the library, unit tests and CLI, run by ctest; then the
# libFuzzer targets for a bounded time from the seed corpus. Exits non-zero on any failure.
#   FUZZ_SECONDS=30 (per safetensors run; the config fuzzer gets half)
set -eu
cd "$(dirname "$0")/.."
FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
export CC="${CC_SAN:-clang}" CXX="${CXX_SAN:-clang++}"

if [ ! -f build/asan/CMakeCache.txt ]; then
  cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG='-O1 -g' -DLONGTAIL_SANITIZE=ON >/dev/null
fi
cmake --build build/asan -j2
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export OPENBLAS_NUM_THREADS=1
(cd build/asan && ctest --output-on-failure -j2)

if [ ! -f build/fuzz/CMakeCache.txt ]; then
  cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG='-O1 -g' -DLONGTAIL_FUZZ=ON >/dev/null
fi
cmake --build build/fuzz -j2 --target fuzz_safetensors fuzz_config


run_fuzz() {
  name="$1"; secs="$2"
  work="build/fuzz/corpus-$name"
  mkdir -p "$work"
  echo "fuzz: $name for ${secs}s"
  ./build/fuzz/fuzz_"$name" -max_total_time="$secs" -max_len=8192 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix=build/fuzz/ "$work" "fuzz/corpus/$name" 2>build/fuzz/"$name".log || {
    tail -n 40 build/fuzz/"$name".log
    echo "fuzz: $name FAILED (crash input saved in native/build/fuzz/)" >&2
    exit 1
  }
  grep -E "stat::number_of_executed_units|Done" build/fuzz/"$name".log | tail -n 2
}
run_fuzz safetensors "$FUZZ_SECONDS"
run_fuzz config "$((FUZZ_SECONDS / 2))"
echo "engine tests: ok"
