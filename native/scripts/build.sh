#!/bin/sh
# Release build of the engine into native/build/release (incremental: reconfigures only once).
set -eu
cd "$(dirname "$0")/.."
if [ ! -f build/release/CMakeCache.txt ]; then
  cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release
fi
cmake --build build/release -j2
sh scripts/build-addon.sh
