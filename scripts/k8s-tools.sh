#!/usr/bin/env bash
# Builds the cluster toolchain from source with the machine's Go, through the Go module proxy:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, kwokctl, helm and kube-score,
# at the versions in k8s/versions.env. Binaries are cached in a directory named after those
# versions (outside the repository), so a rebuild happens only when a version changes.
# Prints the bin directory on stdout; progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=../k8s/versions.env
source k8s/versions.env

versions="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}_kube-score-${KUBE_SCORE_VERSION}"
cache="${INKWELL_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/inkwell/tools}/$versions"
bin="$cache/bin"
tools=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok kwokctl helm kube-score)

complete=1
for tool in "${tools[@]}"; do [ -x "$bin/$tool" ] || complete=0; done
if [ "$complete" = 1 ]; then
  echo "$bin"
  exit 0
fi

log() { echo "k8s-tools: $*" >&2; }
command -v go >/dev/null || { log "Go is required (https://go.dev/dl/)"; exit 1; }
mkdir -p "$bin"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
started=$SECONDS

# Kubernetes: k8s.io/kubernetes replaces its k8s.io/* staging modules with ./staging paths, so it
# cannot be `go install`ed. A wrapper module requires it and replaces each staging module with the
# matching v0.X release instead; the list comes from that version's own go.mod.
build_kubernetes() {
  local dir="$work/kubernetes" minor="${KUBERNETES_VERSION#v1.}"
  local staging="v0.${minor}"
  minor="${minor%%.*}"
  mkdir -p "$dir" && cd "$dir"
  go mod init inkwell.local/kubernetes-build >/dev/null 2>&1
  go mod edit -require="k8s.io/kubernetes@${KUBERNETES_VERSION}"
  local gomod
  gomod="$(go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
  for module in $(sed -n 's#^\s*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$gomod"); do
    go mod edit -replace="${module}=${module}@${staging}"
  done
  # The dependency versions Kubernetes pins (its go.mod's require block), not newer ones.
  go mod edit -go="$(sed -n 's/^go //p' "$gomod")"
  local commit date ldflags pkg
  date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  commit="$(go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" | sed -n 's/.*"Hash": "\(.*\)",/\1/p' | head -1)"
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X ${pkg}.gitVersion=${KUBERNETES_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
    ldflags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=${date} -X ${pkg}.gitCommit=${commit:-unknown}"
  done
  go mod tidy >/dev/null 2>&1 || true
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    log "building $cmd ${KUBERNETES_VERSION}"
    go build -trimpath -ldflags "$ldflags" -o "$bin/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  done
}

# etcd: the etcd binary's main lives in the root module, which replaces its sub-modules with
# local paths; a wrapper module calls the server module's etcdmain instead.
build_etcd() {
  local dir="$work/etcd"
  mkdir -p "$dir" && cd "$dir"
  go mod init inkwell.local/etcd-build >/dev/null 2>&1
  cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go mod edit -require="go.etcd.io/etcd/server/v3@${ETCD_VERSION}"
  go mod tidy >/dev/null
  log "building etcd ${ETCD_VERSION}"
  go build -trimpath -ldflags "-s -w" -o "$bin/etcd" .
}

build_kwok() {
  log "building kwok and kwokctl ${KWOK_VERSION}"
  local pkg=sigs.k8s.io/kwok/pkg/consts
  GOBIN="$bin" go install -trimpath \
    -ldflags "-s -w -X ${pkg}.Version=${KWOK_VERSION} -X ${pkg}.KubeVersion=${KUBERNETES_VERSION}" \
    "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}" "sigs.k8s.io/kwok/cmd/kwokctl@${KWOK_VERSION}"
}

build_helm() {
  log "building helm ${HELM_VERSION}"
  local minor="${KUBERNETES_VERSION#v1.}"
  minor="${minor%%.*}"
  GOBIN="$bin" go install -trimpath -ldflags "-s -w \
    -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${minor}" \
    "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
}

build_kube_score() {
  log "building kube-score ${KUBE_SCORE_VERSION}"
  GOBIN="$bin" go install -trimpath -ldflags "-s -w -X main.version=${KUBE_SCORE_VERSION#v}" \
    "github.com/zegl/kube-score/cmd/kube-score@${KUBE_SCORE_VERSION}"
}

[ -x "$bin/etcd" ] || (build_etcd)
[ -x "$bin/kubectl" ] && [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kube-controller-manager" ] \
  && [ -x "$bin/kube-scheduler" ] || (build_kubernetes)
[ -x "$bin/kwokctl" ] && [ -x "$bin/kwok" ] || (build_kwok)
[ -x "$bin/helm" ] || (build_helm)
[ -x "$bin/kube-score" ] || (build_kube_score)
log "built in $((SECONDS - started)) s into $bin ($(du -sh "$bin" | cut -f1))"
echo "$bin"
