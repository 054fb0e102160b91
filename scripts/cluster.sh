#!/usr/bin/env bash
# `make cluster-up` / `make cluster-down`: a real Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler) run as local processes by kwokctl, with KWOK simulating
# the nodes and the kubelet, so Deployments, Jobs and rollouts really happen. No Docker needed.
# The kubeconfig is written to var/cluster/kubeconfig (INKWELL_CLUSTER_STATE moves the whole state;
# INKWELL_CLUSTER_NAME and INKWELL_CLUSTER_NODES name the cluster and size it).
set -euo pipefail
cd "$(dirname "$0")/.."
source k8s/versions.env

NAME="${INKWELL_CLUSTER_NAME:-inkwell}"
NODES="${INKWELL_CLUSTER_NODES:-2}"
STATE="${INKWELL_CLUSTER_STATE:-$PWD/var/cluster}"
KUBECONFIG_PATH="$STATE/kubeconfig"
bin="$(scripts/k8s-tools.sh)"
export PATH="$bin:$PATH"
# kwokctl keeps its clusters under KWOK_WORKDIR; ours stays inside var/ with the kubeconfig.
export KWOK_WORKDIR="$STATE/kwok"

up() {
  mkdir -p "$STATE"
  if kwokctl get clusters 2>/dev/null | grep -qx "$NAME"; then
    echo "cluster $NAME is already up (make cluster-down first to recreate it)" >&2
  else
    # KWOK's own stages (from the module kwokctl was built from) plus ours, which take precedence.
    local stages="$STATE/stages.yaml" kwok_src
    kwok_src="$(GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kwok@${KWOK_VERSION}" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')"
    {
      # The set kwokctl uses by default (kustomize/stage/fast), listed file by file.
      for file in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
        pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
        cat "$kwok_src/kustomize/stage/$file"; echo "---"
      done
      cat k8s/kwok/inkwell-stages.yaml; echo "---"
      # Loopback only: kwokctl would bind etcd (no authentication) and the API server to 0.0.0.0.
      cat k8s/kwok/kwokctl.yaml
    } > "$stages"
    kwokctl create cluster \
      --name "$NAME" \
      --runtime binary \
      --kubeconfig "$KUBECONFIG_PATH" \
      --etcd-binary "$bin/etcd" \
      --kube-apiserver-binary "$bin/kube-apiserver" \
      --kube-controller-manager-binary "$bin/kube-controller-manager" \
      --kube-scheduler-binary "$bin/kube-scheduler" \
      --kwok-controller-binary "$bin/kwok" \
      --config "$stages" \
      --wait 120s
  fi
  # Room for pods that request ephemeral storage, as the chart's do (KWOK's default node has none).
  kwokctl scale node --name "$NAME" --replicas "$NODES" \
    --param '.allocatable["ephemeral-storage"] = "100Gi"' >/dev/null
  kubectl --kubeconfig "$KUBECONFIG_PATH" wait --for=condition=Ready nodes --all --timeout=120s >/dev/null
  kubectl --kubeconfig "$KUBECONFIG_PATH" get nodes
  echo "export KUBECONFIG=$KUBECONFIG_PATH PATH=$bin:\$PATH"
}

down() {
  if kwokctl get clusters 2>/dev/null | grep -qx "$NAME"; then
    kwokctl delete cluster --name "$NAME" --kubeconfig "$KUBECONFIG_PATH"
  fi
  rm -rf "$STATE"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
