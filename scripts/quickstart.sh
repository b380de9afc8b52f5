#!/usr/bin/env bash
# The README's first command: on a fresh machine, build what is needed, start the local control
# plane (cluster "wandb-dev", left running), install the WeightsAndBiases CRD, apply the sample
# instance (examples/wandb-managed.yaml) so the real API server validates it, and show what the
# operator will create for it and the instance's status.
#
# The controller (`wandb-operator run`) is not released yet (issue #4): until it is, the sample
# instance is accepted and listed but nothing reconciles it, so it shows no Ready condition.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CLUSTER="${WANDB_QUICKSTART_CLUSTER:-wandb-dev}"
SAMPLE="${1:-examples/wandb-managed.yaml}"
say() { printf '\n==> %s\n' "$*" >&2; }

say "building wandb-operator"
cargo build --release -p wandb-operator
OP=target/release/wandb-operator

say "starting the local control plane ($CLUSTER; first run builds it from Go modules, 20-40 min)"
KUBECONFIG="$(scripts/cluster.sh up --name "$CLUSTER" | tail -n 1)"
export KUBECONFIG
PATH="$(scripts/build-k8s-bins.sh --print-dir kubectl):$PATH"

say "installing the CRD"
"$OP" crd | kubectl apply --server-side --field-manager wandb-operator -f -
kubectl wait --for=condition=Established crd/weightsandbiases.apps.wandb.com --timeout=60s

say "what the operator will create for $SAMPLE (wandb-operator render)"
"$OP" render -f "$SAMPLE" -n default | grep -E '^(kind|  name):' | paste - - | sed 's/kind: //; s/  name: / /' | sort | uniq

say "applying $SAMPLE"
kubectl apply --server-side -n default -f "$SAMPLE"

say "status"
kubectl get weightsandbiases -n default
echo
echo "KUBECONFIG=$KUBECONFIG   (stop the cluster with: scripts/cluster.sh down --name $CLUSTER)"
