#!/usr/bin/env bash
# Benchmarks the operator binary against the local control plane (8 fake nodes): time from apply
# to Ready for 1, 10 and 100 instances (built-in manifest, every backing service managed), API
# writes while settled (must stay 0), and the operator's memory (VmRSS/VmHWM from /proc).
# Usage: scripts/bench-instances.sh   (WANDB_BENCH_SIZES="1 10" for fewer; WANDB_BENCH_OPERATOR=BINARY)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export WANDB_CLUSTER_NODES=8
KC=$(scripts/cluster.sh up --name bench | tail -n1); export KUBECONFIG=$KC
PATH="$(scripts/build-k8s-bins.sh --print-dir kubectl):$PATH"
# WANDB_BENCH_OPERATOR: an operator binary to measure instead of building this tree's release one.
if [ -n "${WANDB_BENCH_OPERATOR:-}" ]; then
  OP="$(realpath "$WANDB_BENCH_OPERATOR")"
else
  cargo build -q --release -p wandb-operator
  OP="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/wandb-operator"
fi
$OP crd | kubectl apply --server-side --force-conflicts -f - >/dev/null
sleep 3
for i in $(seq 1 340); do echo "---
apiVersion: v1
kind: PersistentVolume
metadata: {name: bench-pv-$i}
spec: {capacity: {storage: 1Ti}, accessModes: [ReadWriteOnce], persistentVolumeReclaimPolicy: Retain, hostPath: {path: /tmp/bench/pv-$i, type: DirectoryOrCreate}}"; done | kubectl apply -f - >/dev/null
kubectl create ns bench >/dev/null
PORT=18089
$OP run --namespaces bench --metrics-bind-address 127.0.0.1:$PORT --health-probe-bind-address 0 > "$(dirname "$KC")/bench-operator.log" 2>&1 &
PID=$!
sleep 2
writes() { curl -s 127.0.0.1:$PORT/metrics | awk '/^wandb_operator_api_writes_total/ {print $2}'; }
# Every request the operator sent (wandb_operator_api_requests_total, all verbs and resources).
requests() { curl -s 127.0.0.1:$PORT/metrics | awk '/^wandb_operator_api_requests_total/ {s+=$2} END {print s+0}'; }
rss() { awk '/VmRSS|VmHWM/ {printf "%s %s MiB  ", $1, int($2/1024)}' /proc/$PID/status; }
echo "idle: $(rss)"
start=0
for n in ${WANDB_BENCH_SIZES:-1 10 100}; do
  t0=$(date +%s.%N)
  for i in $(seq $start $((n-1))); do
    echo "---
apiVersion: apps.wandb.com/v2
kind: WeightsAndBiases
metadata: {name: wb$i, namespace: bench}
spec: {wandb: {hostname: http://wb$i.local, version: \"0.84.0\"}}"
  done | kubectl apply -f - >/dev/null
  for i in $(seq $start $((n-1))); do kubectl wait -n bench --for=condition=Ready weightsandbiases/wb$i --timeout=900s >/dev/null || echo "wb$i not Ready"; done
  t1=$(date +%s.%N)
  echo "instances=$n (added $((n-start))): all Ready in $(echo "$t1 - $t0" | bc) s; $(rss)"
  sleep 20
  w0=$(writes); sleep 40; w1=$(writes)
  echo "  settled 40 s: API writes $w0 -> $w1 (delta $(echo "$w1 - $w0" | bc)); $(rss)"
  # One pass of every instance (a new annotation each): requests and writes it costs.
  r0=$(requests); w0=$(writes)
  kubectl annotate -n bench wandb --all "bench/pass=$RANDOM" --overwrite >/dev/null
  sleep 20
  r1=$(requests); w1=$(writes)
  echo "  a pass of all $n: $(echo "$r1 - $r0" | bc) requests ($(echo "scale=2; ($r1 - $r0) / $n" | bc) per instance), $(echo "$w1 - $w0" | bc) writes; $(rss)"
  start=$n
done
kill $PID; wait $PID
scripts/cluster.sh down --name bench
echo DONE
