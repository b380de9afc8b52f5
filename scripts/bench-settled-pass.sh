#!/usr/bin/env bash
# Counts the API requests of one settled reconcile pass, as the API server itself counts them
# (apiserver_request_total), so that any operator build can be measured the same way, including
# builds without the operator's own request metric:
#
#   scripts/bench-settled-pass.sh [OPERATOR_BINARY]   # default: target/release/wandb-operator
#
# Starts a private cluster, runs the operator for one namespace, brings one instance (built-in
# manifest, every backing service managed) to Ready, lets it settle, then triggers N passes with
# a new annotation each (WANDB_BENCH_PASSES, default 5) and prints the requests per pass by verb
# and resource. Requests of the control plane itself (leases, nodes, events, ...) and discovery
# are left out; the annotation patch of this script is subtracted. Benchmark, not a test: it
# sleeps.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OP="$(realpath "${1:-target/release/wandb-operator}")"
PASSES="${WANDB_BENCH_PASSES:-5}"
NAME="bench-pass-$$"
KC=$(WANDB_CLUSTER_NODES=1 scripts/cluster.sh up --name "$NAME" | tail -n1); export KUBECONFIG=$KC
trap 'kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; scripts/cluster.sh down --name "$NAME" >/dev/null' EXIT
PATH="$(scripts/build-k8s-bins.sh --print-dir kubectl):$PATH"
"$OP" crd | kubectl apply --server-side -f - >/dev/null
kubectl wait --for=condition=Established crd/weightsandbiases.apps.wandb.com >/dev/null
for i in $(seq 1 8); do echo "---
apiVersion: v1
kind: PersistentVolume
metadata: {name: pass-pv-$i}
spec: {capacity: {storage: 1Ti}, accessModes: [ReadWriteOnce], persistentVolumeReclaimPolicy: Retain, hostPath: {path: /tmp/bench-pass/pv-$i, type: DirectoryOrCreate}}"; done | kubectl apply -f - >/dev/null
kubectl create ns bench >/dev/null
"$OP" run --namespaces bench --metrics-bind-address 0 --health-probe-bind-address 0 >"$(dirname "$KC")/operator.log" 2>&1 &
PID=$!
echo "apiVersion: apps.wandb.com/v2
kind: WeightsAndBiases
metadata: {name: w, namespace: bench}
spec: {wandb: {hostname: http://w.local, version: \"0.84.0\", manifestRepository: \"builtin://\"}}" | kubectl apply -f - >/dev/null
kubectl wait -n bench --for=condition=Ready wandb/w --timeout=300s >/dev/null
sleep 15 # settle: finished Jobs deleted, status recorded

counts() { # verb resource count, for the resources an instance has
  kubectl get --raw /metrics | python3 -c '
import re, sys, collections
c = collections.Counter()
for line in sys.stdin:
    if not line.startswith("apiserver_request_total{"): continue
    labels = dict(re.findall(r"(\w+)=\"([^\"]*)\"", line))
    c[(labels.get("verb"), labels.get("resource") + ("/" + labels["subresource"] if labels.get("subresource") else ""))] += float(line.rsplit(" ", 1)[1])
for (v, r), n in sorted(c.items()): print(v, r, int(n))'
}
before=$(counts)
for i in $(seq 1 "$PASSES"); do
  kubectl annotate -n bench wandb/w "bench/pass=$i-$RANDOM" --overwrite >/dev/null
  sleep 3
done
after=$(counts)
python3 - "$PASSES" <<PY
import sys, collections
passes = int(sys.argv[1])
def parse(s):
    return {(v, r): int(n) for v, r, n in (l.split() for l in s.strip().splitlines())}
b, a = parse("""$before"""), parse("""$after""")
skip = {"leases", "nodes", "nodes/status", "events", "pods/status", "endpointslices", "endpoints", "pods", "namespaces", "serviceaccounts/token", "selfsubjectaccessreviews"}
d = collections.Counter()
for k, n in a.items():
    # Non-resource URLs (/api, /apis, /openapi): kubectl annotate's discovery.
    if k[1] in skip or k[1].startswith("/"): continue
    delta = n - b.get(k, 0)
    if delta: d[k] = delta
# This script's own requests: one PATCH (and the GET kubectl annotate makes) per pass.
d[("PATCH", "weightsandbiases")] -= passes
d[("GET", "weightsandbiases")] -= passes
d = {k: v for k, v in d.items() if v > 0}
total = sum(d.values())
print(f"requests per settled pass: {total / passes:.1f}")
for (v, r), n in sorted(d.items()): print(f"  {v:7} {r:30} {n / passes:.1f}")
PY
