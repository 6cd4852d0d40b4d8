#!/bin/sh
# Release build of the Node-API addon into native/build/addon/longtail_engine.node (its own build
# dir, so it never collides with build/release). Header paths come from the npm packages
# node-api-headers and node-addon-api (installed by `npm install`); nothing is downloaded.
set -eu
cd "$(dirname "$0")/.."
NODE_BIN="${NODE:-node}"
NODE_API_INCLUDE="$("$NODE_BIN" -p "require('node-api-headers').include_dir")"
NODE_ADDON_API_INCLUDE="$("$NODE_BIN" -p "require('path').dirname(require.resolve('node-addon-api/package.json'))")"
if [ ! -f build/addon/CMakeCache.txt ]; then
  cmake -S . -B build/addon -DCMAKE_BUILD_TYPE=Release -DLONGTAIL_NODE_ADDON=ON \
    -DNODE_API_INCLUDE="$NODE_API_INCLUDE" -DNODE_ADDON_API_INCLUDE="$NODE_ADDON_API_INCLUDE"
fi
cmake --build build/addon --target longtail_engine_node -j2
# Undefined symbols are allowed in the module (Node's napi_* resolve at load): make sure none of
# them is the engine's own (e.g. a source file missing from the library).
if command -v nm >/dev/null 2>&1; then
  missing="$(nm -D --undefined-only build/addon/longtail_engine.node | grep longtail || true)"
  if [ -n "$missing" ]; then
    echo "longtail_engine.node has undefined engine symbols:" >&2
    echo "$missing" >&2
    exit 1
  fi
fi
