#!/usr/bin/env bash
# The whole test suite on a fresh machine, as CI runs it: installs what the tests need (Redis,
# Chromium, Node 24, the Go-built test binaries, the npm dependencies), builds, then runs `npm test`
# and `npm run test:reliability`.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
step() { printf '\n==> %s (%d s)\n' "$*" "$((SECONDS - started))"; }

step "System packages"
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v openssl >/dev/null || missing+=(openssl)
# The renderer sandbox; test/security/sandbox.test.ts plays every file-read trick with it and without it.
command -v bwrap >/dev/null || missing+=(bubblewrap)
# A real node for the tests (test/env/node.ts): containerd, runc and the CNI plugins, and
# debootstrap for the base image made from Debian's packages.
command -v containerd >/dev/null || missing+=(containerd)
command -v runc >/dev/null || missing+=(runc)
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v ip >/dev/null || missing+=(iproute2)
command -v iptables >/dev/null || missing+=(iptables)
# The app image, built from the Dockerfile without a Docker engine (test/env/app-image.ts).
command -v buildah >/dev/null || missing+=(buildah)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || [ -n "${SLUICE_CHROMIUM:-}" ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  command -v apt-get >/dev/null || { echo "install ${missing[*]} (this script installs them with apt-get on Debian and Ubuntu)" >&2; exit 1; }
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
redis-server --version

step "Go"
command -v go >/dev/null || { echo "Go is required to build the test binaries (etcd, kube-apiserver, kustomize, helm)" >&2; exit 1; }
go version

step "Node.js"
node_bin=$(scripts/node.sh)
export PATH="$node_bin:$PATH"
node --version
npm --version

step "Test binaries (built once per version, cached under \$HOME/.cache/sluice-test-env)"
scripts/test-tools.sh etcd kube-apiserver kube-controller-manager kube-scheduler kubelet pause kustomize helm

step "Dependencies"
npm ci --no-audit --no-fund

step "Test node's base image (made from Debian's packages once, cached under \$HOME/.cache/sluice-test-env)"
node --input-type=module -e 'const { nodeBaseImage } = await import("./test/env/image.ts"); const image = await nodeBaseImage(process.env, {}, (line) => console.log(line)); console.log(`test-node image: ${image.name}`);'

step "Build"
npm run build
node bin/sluice.js --help >/dev/null

step "App image from the Dockerfile, for the install test (buildah; its layers cached under \$HOME/.cache/sluice-test-env)"
node --input-type=module -e 'const { appImage } = await import("./test/env/app-image.ts"); const image = await appImage(process.env, (line) => console.log(line)); console.log(`app image: ${image.name}, ${Math.round(image.sizeBytes / 1e6)} MB, ${(image.buildMs / 1000).toFixed(1)} s`);'

step "npm test"
npm test
node -e 'const r = require("./.cache/test-results.json"); console.log(`Tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`)'

step "npm run test:reliability (faults, scale, bad input, properties; each prints its figures)"
npm run test:reliability
node -e 'const r = require("./.cache/reliability-results.json"); console.log(`Reliability tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed`)'

step "Done"
