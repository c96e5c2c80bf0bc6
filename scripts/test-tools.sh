#!/usr/bin/env bash
# Builds the real binaries the tests run against (etcd, kube-apiserver, kustomize, helm, dyff for
# the benchmark, and kubelet, kube-scheduler and pause for the opt-in node of test/env/node.ts)
# from their wrapper Go modules under test/env/tools/<tool>/, and caches each one under
# $HOME/.cache/sluice-test-env/<tool>-<version>/. The version lives in one place: the `require`
# line of the wrapper module's go.mod (for pause, a hash of its source). A binary is rebuilt only
# when that version changes.
#
# Usage: scripts/test-tools.sh [TOOL...]      build (or reuse) the named tools, default all
#        scripts/test-tools.sh --print-env    print SLUICE_<TOOL>=path lines for the cached tools
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tools_dir="${SLUICE_TOOLS_DIR:-$root/test/env/tools}"
cache="${SLUICE_TOOLS_CACHE:-$HOME/.cache/sluice-test-env}"
all_tools=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kustomize helm dyff pause)

# The wrapper module a tool is built from (the Kubernetes commands share one).
wrapper_of() {
  case "$1" in
    kube-controller-manager|kube-scheduler|kubelet) echo "kube-apiserver" ;;
    *) echo "$1" ;;
  esac
}

# The module whose version names the cache directory, and the package that is the command.
module_of() {
  case "$1" in
    etcd) echo "go.etcd.io/etcd/server/v3" ;;
    kube-apiserver|kube-controller-manager|kube-scheduler|kubelet) echo "k8s.io/kubernetes" ;;
    kustomize) echo "sigs.k8s.io/kustomize/kustomize/v5" ;;
    helm) echo "helm.sh/helm/v3" ;;
    dyff) echo "github.com/homeport/dyff" ;;
    pause) echo "sluice.dev/test-env/pause" ;;
    *) echo "test-tools: unknown tool '$1' (known: ${all_tools[*]})" >&2; return 2 ;;
  esac
}
package_of() {
  case "$1" in
    kube-apiserver|kube-controller-manager|kube-scheduler|kubelet) echo "k8s.io/kubernetes/cmd/$1" ;;
    helm) echo "helm.sh/helm/v3/cmd/helm" ;;
    dyff) echo "github.com/homeport/dyff/cmd/dyff" ;;
    pause) echo "." ;;
    *) module_of "$1" ;;
  esac
}

version_of() {
  local tool=$1 module
  # The sandbox ("pause") command is our own source with no dependencies: its version is a hash
  # of that source, so an edit rebuilds it.
  if [ "$tool" = pause ]; then
    echo "src-$(cat "$tools_dir/pause/go.mod" "$tools_dir/pause/main.go" | sha256sum | cut -c1-12)"
    return 0
  fi
  module=$(module_of "$tool")
  local v
  v=$(awk -v m="$module" '$1 == "require" && $2 == m { print $3 }' "$tools_dir/$(wrapper_of "$tool")/go.mod")
  [ -n "$v" ] || { echo "test-tools: $tools_dir/$(wrapper_of "$tool")/go.mod has no 'require $module vX' line" >&2; return 1; }
  echo "$v"
}

ldflags_of() {
  local tool=$1 version=$2
  case "$tool" in
    kube-apiserver|kube-controller-manager|kube-scheduler|kubelet)
      # The same variables hack/lib/version.sh sets, so /version reports the real release.
      local minor=${version#v1.}; minor=${minor%%.*}
      local flags="" pkg
      for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        flags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
        flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
      done
      echo "-s -w$flags" ;;
    kustomize) echo "-s -w -X sigs.k8s.io/kustomize/api/provenance.version=$version" ;;
    helm)
      # As helm's Makefile does: the Kubernetes version helm assumes (.Capabilities.KubeVersion,
      # chart kubeVersion checks) follows the client-go it is built with. Without it helm claims
      # v1.20.0 and charts that need a newer Kubernetes do not render.
      local k8s minor
      k8s=$(cd "$tools_dir/helm" && GOFLAGS=-mod=mod go list -m -f '{{.Version}}' k8s.io/client-go)
      minor=${k8s#v0.}; minor=${minor%%.*}
      local flags="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
      for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
        flags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
      done
      echo "$flags" ;;
    dyff) echo "-s -w -X github.com/homeport/dyff/internal/cmd.version=${version#v}" ;;
    *) echo "-s -w" ;;
  esac
}

# Bumped when a tool's build recipe changes, so a binary cached by an older recipe is rebuilt.
recipe_of() {
  case "$1" in
    helm) echo "-r2" ;;
    *) echo "" ;;
  esac
}

binary_path() {
  local tool=$1 version
  version=$(version_of "$tool")
  echo "$cache/$tool-$version$(recipe_of "$tool")/$tool"
}

build() {
  local tool=$1 version out
  version=$(version_of "$tool")
  out="$cache/$tool-$version$(recipe_of "$tool")"
  if [ -x "$out/$tool" ]; then
    echo "test-tools: $tool $version cached at $out"
    return 0
  fi
  command -v go >/dev/null || { echo "test-tools: go is not on PATH; install Go 1.26 to build $tool" >&2; return 1; }
  local started=$SECONDS tmp
  echo "test-tools: building $tool $version ($(package_of "$tool"))"
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.build-$tool.XXXXXX")
  if ! (cd "$tools_dir/$(wrapper_of "$tool")" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
        -ldflags "$(ldflags_of "$tool" "$version")" -o "$tmp/$tool" "$(package_of "$tool")"); then
    rm -rf "$tmp"
    echo "test-tools: building $tool failed: module $(module_of "$tool") $version (wrapper $tools_dir/$(wrapper_of "$tool"))" >&2
    return 1
  fi
  rm -rf "$out"
  mv "$tmp" "$out"
  echo "test-tools: built $tool $version in $((SECONDS - started)) s"
}

if [ "${1:-}" = "--print-env" ]; then
  for tool in "${all_tools[@]}"; do
    path=$(binary_path "$tool")
    [ -x "$path" ] && echo "SLUICE_$(echo "$tool" | tr 'a-z-' 'A-Z_')=$path"
  done
  exit 0
fi

selected=("$@")
[ ${#selected[@]} -gt 0 ] || selected=("${all_tools[@]}")
for tool in "${selected[@]}"; do
  module_of "$tool" >/dev/null
  build "$tool"
done
