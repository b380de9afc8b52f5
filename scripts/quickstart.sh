#!/usr/bin/env bash
# The README's first command: on a fresh machine, build what is needed, start the local control
# plane (cluster "wandb-dev", left running), install the CRD, run the operator on this host,
# apply the sample instance (examples/wandb-managed.yaml: every backing service managed in the
# cluster), wait until it is Ready, and show its status.
#
# The local control plane has fake nodes (no container runs) and no storage provisioner, so the
# script pre-creates a few hostPath PersistentVolumes for the managed services' claims.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CLUSTER="${WANDB_QUICKSTART_CLUSTER:-wandb-dev}"
SAMPLE="${1:-examples/wandb-managed.yaml}"
NS="${WANDB_QUICKSTART_NAMESPACE:-wandb}"
say() { printf '\n==> %s\n' "$*" >&2; }

say "building wandb-operator"
cargo build --release -p wandb-operator
OP="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/wandb-operator"

say "starting the local control plane ($CLUSTER; the first run builds it from Go modules, ~15 min)"
KUBECONFIG="$(scripts/cluster.sh up --name "$CLUSTER" | tail -n 1)"
export KUBECONFIG
PATH="$(scripts/build-k8s-bins.sh --print-dir kubectl):$PATH"
STATE="$(dirname "$KUBECONFIG")"

say "installing the CRD"
"$OP" crd | kubectl apply --server-side --force-conflicts --field-manager wandb-operator -f -
# (`kubectl wait` fails outright while a new CRD has no status yet, so poll.)
for _ in $(seq 120); do
  [ "$(kubectl get crd weightsandbiases.apps.wandb.com -o jsonpath='{.status.conditions[?(@.type=="Established")].status}')" = True ] && break
  sleep 0.5
done

say "volumes for the managed services (the local control plane has no provisioner)"
for i in 1 2 3 4 5 6; do
  kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolume
metadata: {name: quickstart-pv-$i, labels: {wandb-quickstart: "true"}}
spec:
  capacity: {storage: 1Ti}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: /tmp/wandb-quickstart/pv-$i, type: DirectoryOrCreate}
YAML
done

say "running the operator on this host (log: $STATE/operator.log)"
if [ -f "$STATE/operator.pid" ] && kill -0 "$(cat "$STATE/operator.pid")" 2>/dev/null; then
  kill "$(cat "$STATE/operator.pid")"; sleep 1
fi
nohup "$OP" run --namespaces "$NS" --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 0 \
  >"$STATE/operator.log" 2>&1 &
echo $! >"$STATE/operator.pid"

say "applying $SAMPLE in namespace $NS"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl apply --server-side -n "$NS" -f "$SAMPLE"
NAME="$(kubectl get -n "$NS" -f "$SAMPLE" -o jsonpath='{.metadata.name}')"

say "waiting for Ready"
kubectl wait -n "$NS" --for=condition=Ready "weightsandbiases/$NAME" --timeout=300s

say "status"
kubectl get -n "$NS" weightsandbiases "$NAME"
echo
kubectl get -n "$NS" weightsandbiases "$NAME" -o jsonpath='{range .status.conditions[*]}{.type}={.status} ({.reason}): {.message}{"\n"}{end}'
echo
kubectl get -n "$NS" statefulsets,deployments,jobs
cat <<DONE

The operator keeps running (pid $(cat "$STATE/operator.pid")). Try:
  export KUBECONFIG=$KUBECONFIG
  kubectl describe -n $NS weightsandbiases $NAME
Stop everything with: kill \$(cat $STATE/operator.pid); scripts/cluster.sh down --name $CLUSTER
DONE
