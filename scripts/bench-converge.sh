#!/usr/bin/env bash
# How fast the operator converges, measured on an audited local control plane (benchmark, not a
# test: it sleeps). For each size it prints wall time from apply to Ready, the operator's CPU
# seconds and peak RSS, the requests it sent by verb (from the API server's audit log, matched by
# its User-Agent `wandb-operator/`), its writes and CPU while settled, and its CPU per resync.
#
#   scripts/bench-converge.sh [SIZES...]    # default: 1 10 100 (1000 works; it takes a while)
#
# First the cluster's own floor: a bare Deployment (1 replica) until Available and a Job until
# Complete, applied with kubectl. Then 1 instance 5 times (min and median), then each size at
# once. Instances use the built-in manifest and external services (one Secret, endpoints that
# refuse connections: the preflight reports them, which does not gate Ready), so no PV is needed.
# Environment: WANDB_BENCH_OPERATOR (a binary to measure; default: this tree's release build),
# WANDB_BENCH_SETTLE (seconds watched for settled writes, default 300; for the sizes before the
# largest WANDB_BENCH_SETTLE_SMALL when set), WANDB_BENCH_WORKERS
# (the operator's --concurrency, default its own).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SIZES="${*:-1 10 100}"
SETTLE="${WANDB_BENCH_SETTLE:-300}"
MAX=1; for n in $SIZES; do [ "$n" -gt "$MAX" ] && MAX=$n; done
# A fake node takes 110 pods; an instance runs about 15 (its Deployments and Jobs).
export WANDB_CLUSTER_NODES=$(( MAX * 15 / 100 + 4 ))
NAME="bench-converge"
KC=$(scripts/cluster.sh up --name "$NAME" --audit | tail -n1); export KUBECONFIG=$KC
ROOT="${WANDB_OP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wandb-operator}/clusters/$NAME"
AUDIT="$ROOT/audit.log"
PATH="$(scripts/build-k8s-bins.sh --print-dir kubectl):$PATH"
PID=""
trap '[ -z "$PID" ] || kill "$PID" 2>/dev/null; scripts/cluster.sh down --name "$NAME" >/dev/null' EXIT
if [ -n "${WANDB_BENCH_OPERATOR:-}" ]; then
  OP="$(realpath "$WANDB_BENCH_OPERATOR")"
else
  cargo build -q --release -p wandb-operator
  OP="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/wandb-operator"
fi
now() { date +%s.%N; }
since() { python3 -c "print(f'{$(now) - $1:.2f}')"; }
median() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print(f"min {min(v):.2f} s, median {statistics.median(v):.2f} s")' "$@"; }
lines() { wc -l < "$AUDIT"; }
# The operator's requests (by verb) in the audit log after line $1.
requests() {
  tail -n +"$(( $1 + 1 ))" "$AUDIT" | python3 -c '
import json, sys, collections
c = collections.Counter(); by = collections.Counter()
WRITES = ("create", "update", "patch", "delete", "deletecollection")
for line in sys.stdin:
    try: e = json.loads(line)
    except ValueError: continue
    if e.get("stage") == "ResponseComplete" and e.get("userAgent", "").startswith("wandb-operator/"):
        c[e["verb"]] += 1
        if e["verb"] in WRITES:
            r = e.get("objectRef", {})
            by[e["verb"] + " " + r.get("resource", "?") + ("/" + r["subresource"] if r.get("subresource") else "")] += 1
w = sum(n for v, n in c.items() if v in WRITES)
detail = ", ".join(f"{k} {n}" for k, n in sorted(by.items()))
print(" ".join(f"{v}={n}" for v, n in sorted(c.items())) or "none", f"(writes {w}" + (f": {detail})" if detail else ")"))'
}
cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$PID/stat"; }
rss() { awk '/VmHWM/ {printf "%d MiB", $2 / 1024}' "/proc/$PID/status"; }
wait_ready() { # namespace first last: beyond 10 instances polls every half second (one kubectl
  # per instance would add seconds of its own at 1000)
  local want=$(( $3 - $2 + 1 )) deadline=$(( SECONDS + 3600 ))
  if [ "$want" -le 10 ]; then # exact for the small sizes
    for i in $(seq "$2" "$3"); do
      kubectl wait -n "$1" --for=condition=Ready "weightsandbiases/wb$i" --timeout=1800s >/dev/null
    done
    return 0
  fi
  while :; do
    ready=$(kubectl get -n "$1" weightsandbiases -o json | python3 -c '
import json, sys
first, last = int(sys.argv[1]), int(sys.argv[2])
n = 0
for i in json.load(sys.stdin)["items"]:
    name = i["metadata"]["name"]
    if not name.startswith("wb") or not first <= int(name[2:]) <= last: continue
    if any(c["type"] == "Ready" and c["status"] == "True" for c in i.get("status", {}).get("conditions", [])): n += 1
print(n)' "$2" "$3")
    [ "$ready" -ge "$want" ] && return 0
    [ "$SECONDS" -lt "$deadline" ] || { echo "only $ready of $want Ready after an hour" >&2; return 1; }
    sleep 0.5
  done
}
instances() { # namespace first last
  for i in $(seq "$2" "$3"); do
    echo "---
apiVersion: apps.wandb.com/v2
kind: WeightsAndBiases
metadata: {name: wb$i, namespace: $1}
spec:
  wandb: {hostname: \"http://wb$i.local\", version: \"0.84.0\", manifestRepository: \"builtin://\"}
  mysql: {default: {externalMysql: {host: {name: ext, key: host}, port: {name: ext, key: port}, database: {name: ext, key: database}, username: {name: ext, key: user}, password: {name: ext, key: password}}}}
  redis: {default: {externalRedis: {host: {name: ext, key: host}, port: {name: ext, key: port}}}}
  objectStore: {default: {externalObjectStore: {bucket: {name: ext, key: bucket}}}}
  clickhouse: {default: {externalClickhouse: {host: {name: ext, key: host}, username: {name: ext, key: user}, password: {name: ext, key: password}}}}
  kafka: {externalKafka: {bootstrapServers: {name: ext, key: servers}}}"
  done
}
namespace() {
  kubectl create ns "$1" >/dev/null
  kubectl -n "$1" create secret generic ext --from-literal=host=127.0.0.1 --from-literal=port=1 \
    --from-literal=database=wandb --from-literal=user=wandb --from-literal=password=bench \
    --from-literal=bucket=wandb --from-literal=servers=127.0.0.1:1 >/dev/null
}

echo "date: $(date -u +%FT%TZ); load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; $WANDB_CLUSTER_NODES fake nodes"

# The cluster's floor.
kubectl create ns floor >/dev/null
d=(); j=()
for r in 1 2 3; do
  t0=$(now)
  kubectl -n floor create deployment "d$r" --image=registry.k8s.io/pause:3.10 >/dev/null
  kubectl -n floor wait --for=condition=Available "deployment/d$r" --timeout=120s >/dev/null
  d+=("$(since "$t0")")
  t0=$(now)
  kubectl -n floor create job "j$r" --image=registry.k8s.io/pause:3.10 >/dev/null
  kubectl -n floor wait --for=condition=Complete "job/j$r" --timeout=120s >/dev/null
  j+=("$(since "$t0")")
done
echo "floor: a Deployment Available: $(median "${d[@]}"); a Job Complete: $(median "${j[@]}")"

"$OP" crd | kubectl apply --server-side --force-conflicts -f - >/dev/null
# A CRD read before its status is written fails `kubectl wait` outright (nil conditions): retry.
for _ in $(seq 50); do
  kubectl wait --for=condition=Established crd/weightsandbiases.apps.wandb.com >/dev/null 2>&1 && break
  sleep 0.2
done
namespace bench
ARGS=(run --namespaces bench --metrics-bind-address 0 --health-probe-bind-address 0)
[ -z "${WANDB_BENCH_WORKERS:-}" ] || ARGS+=(--concurrency "$WANDB_BENCH_WORKERS")
"$OP" "${ARGS[@]}" > "$ROOT/bench-operator.log" 2>&1 &
PID=$!
sleep 2
echo "operator idle: $(rss)"

# One instance, five times.
t=(); a0=$(lines)
for r in 1 2 3 4 5; do
  t0=$(now)
  instances bench 0 0 | kubectl apply -f - >/dev/null
  wait_ready bench 0 0
  t+=("$(since "$t0")")
  kubectl -n bench delete weightsandbiases wb0 --wait=true --timeout=120s >/dev/null
done
echo "1 instance, 5 runs: apply -> Ready $(median "${t[@]}"); requests for the 5 creates and deletes: $(requests "$a0")"

first=1
for n in $SIZES; do
  last=$(( first + n - 1 ))
  a0=$(lines); c0=$(cpu); t0=$(now)
  instances bench "$first" "$last" | kubectl apply -f - >/dev/null
  wait_ready bench "$first" "$last"
  echo "$n instance(s) [load average $(cut -d' ' -f1-3 /proc/loadavg)]: all Ready in $(since "$t0") s; operator CPU $(python3 -c "print(f'{$(cpu) - $c0:.2f}')") s; peak RSS $(rss); requests: $(requests "$a0")"
  sleep 10 # finished Jobs deleted, statuses recorded
  settle=$SETTLE; [ "$n" -eq "$MAX" ] || settle=${WANDB_BENCH_SETTLE_SMALL:-$SETTLE}
  a0=$(lines); c0=$(cpu); sleep "$settle"
  echo "  settled ${settle} s (every instance in the namespace): CPU $(python3 -c "print(f'{$(cpu) - $c0:.2f}')") s; $(requests "$a0")"
  a0=$(lines); c0=$(cpu)
  kubectl -n bench annotate weightsandbiases --all "bench/resync=$RANDOM$RANDOM" --overwrite >/dev/null
  total=$(( last ))
  sleep $(( total / 20 > 20 ? total / 20 : 20 ))
  echo "  a resync of all $total: CPU $(python3 -c "c=$(cpu) - $c0; print(f'{c:.2f} s, {1000 * c / $total:.1f} ms per instance')"); requests: $(requests "$a0"); $(rss)"
  first=$(( last + 1 ))
done
