#!/usr/bin/env bash
# The local Kubernetes control plane for tests, the quick start and CI.
#
#   scripts/cluster.sh up     [--name NAME] [--audit]  start (or reuse) a cluster; last stdout line = kubeconfig path
#                                             (--audit: the API server logs every request at Metadata
#                                             level to clusters/NAME/audit.log, for benchmarks)
#   scripts/cluster.sh down   [--name NAME]   stop every process of the cluster and delete its state
#   scripts/cluster.sh status [--name NAME]   is it up? API address, kubeconfig (exit 1 when not up)
#   scripts/cluster.sh kubeconfig [--name NAME]  print the kubeconfig path (exit 1 when not up)
#   scripts/cluster.sh prune                  delete the state of clusters that have no process left
#
# NAME defaults to wandb-dev. A cluster is etcd + kube-apiserver + kube-controller-manager +
# kube-scheduler + kwok (fake nodes: Deployment pods become Ready, Job pods Succeed), run by
# kwokctl's binary runtime from the binaries that scripts/build-k8s-bins.sh builds (built on demand).
# Everything listens on 127.0.0.1 only, on random free ports. Each cluster lives in its own folder,
# ${WANDB_OP_CACHE:-~/.cache/wandb-operator}/clusters/NAME, so several can run side by side.
# ~/.kube/config is never touched.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${WANDB_OP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wandb-operator}"
BUILD="$HERE/build-k8s-bins.sh"
NODES="${WANDB_CLUSTER_NODES:-1}"
UP_TIMEOUT="${WANDB_CLUSTER_TIMEOUT:-180}"   # seconds, for every wait in `up`

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

cmd="${1:-}"; [ -n "$cmd" ] || usage; shift
NAME=wandb-dev
AUDIT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --audit) AUDIT=1; shift ;;
    --name) NAME="${2:?--name needs a value}"; shift 2 ;;
    --name=*) NAME="${1#--name=}"; shift ;;
    -h|--help) usage ;;
    *) die "unknown argument: $1" ;;
  esac
done
[[ "$NAME" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "cluster name must be a DNS label: $NAME"

ROOT="$CACHE/clusters/$NAME"      # KWOK_WORKDIR of this cluster
DIR="$ROOT/clusters/$NAME"        # kwokctl's folder for the cluster (pids/, logs/, pki/, etcd/)
KUBECONFIG_PATH="$DIR/kubeconfig.yaml"
export KWOK_WORKDIR="$ROOT"

# kubectl: the one built with the control plane (same version, so no skew warnings); $KUBECTL
# overrides it. kwokctl is given it too (it would otherwise take any kubectl on PATH, or download one).
resolve_kubectl() {
  if [ -z "${KUBECTL:-}" ]; then
    KUBECTL="$("$BUILD" --print-dir kubectl)/kubectl"
    [ -x "$KUBECTL" ] || "$BUILD" kubectl >&2
  fi
  KUBECTL="$(readlink -f "$KUBECTL")"
}

kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" --request-timeout=10s "$@"; }

# A pid that runs (zombies, which PID 1 has not reaped yet, don't count).
alive() { local st; st="$(ps -o stat= -p "$1" 2>/dev/null)" && [ -n "$st" ] && [[ "$st" != Z* ]]; }

# pids of the cluster: from kwokctl's pid files, plus any process whose command line names this
# cluster's folder (a component whose pid file is gone).
cluster_pids() {
  {
    if [ -d "$DIR/pids" ]; then
      local f
      for f in "$DIR"/pids/*.pid; do
        [ -f "$f" ] || continue
        local p; p="$(cat "$f" 2>/dev/null || true)"
        [[ "$p" =~ ^[0-9]+$ ]] && alive "$p" && echo "$p"
      done
    fi
    pgrep -f -- "$DIR/" || true
  } | sort -un | grep -vx "$$" || true
}

api_server() { sed -n 's/^ *server: *//p' "$KUBECONFIG_PATH" 2>/dev/null | head -1; }

COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok-controller)

# Every component has a live pid (kwokctl's pid files).
components_alive() {
  local c p
  for c in "${COMPONENTS[@]}"; do
    p="$(cat "$DIR/pids/$c.pid" 2>/dev/null)" || return 1
    [[ "$p" =~ ^[0-9]+$ ]] && alive "$p" || return 1
  done
}

is_up() {
  [ -f "$KUBECONFIG_PATH" ] || return 1
  components_alive || return 1
  resolve_kubectl
  kc get --raw /readyz >/dev/null 2>&1
}

wait_until() { # wait_until DESCRIPTION COMMAND...
  local what="$1"; shift
  local deadline=$((SECONDS + UP_TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out after ${UP_TIMEOUT}s waiting for $what (logs: $DIR/logs)"
    sleep 0.5
  done
}

stop_cluster() {
  if [ -d "$DIR" ] && [ -x "$KWOKCTL" ]; then
    # kwokctl SIGKILLs the components (pid files) and deletes the folder. Its --kubeconfig must be a
    # path ("" is refused here); a file of our own, so ~/.kube/config is not touched.
    "$KWOKCTL" delete cluster --name "$NAME" --kubeconfig "$ROOT/unused-kubeconfig.yaml" --force \
      </dev/null >>"$ROOT/kwokctl.log" 2>&1 9>&- \
      || log "kwokctl delete cluster failed (see $ROOT/kwokctl.log); killing the processes"
  fi
  # Whatever is left: only processes of this cluster (pid files / this cluster's folder in the
  # command line). The state is thrown away, so SIGKILL, as kwokctl does.
  local pids i
  for i in $(seq 1 50); do
    pids="$(cluster_pids)"; [ -z "$pids" ] && break
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
    sleep 0.2
  done
  pids="$(cluster_pids)"
  [ -z "$pids" ] || die "processes of cluster $NAME still running: $pids"
  rm -rf "$ROOT"
}

KWOKCTL="$("$BUILD" --print-dir kwok)/kwokctl"

show_logs() {
  [ ! -f "$ROOT/kwokctl.log" ] || { log "--- $ROOT/kwokctl.log (tail)"; tail -n 30 "$ROOT/kwokctl.log" >&2; }
  local f
  for f in "$DIR"/logs/*.log; do
    [ -f "$f" ] && { log "--- $f (tail)"; tail -n 15 "$f" >&2; }
  done
  return 0
}

# One `up`/`down` per cluster name at a time. fd 9 is closed for kwokctl (`9>&-`), so the
# components it starts don't inherit the lock.
lock() { mkdir -p "$CACHE/clusters"; exec 9>"$CACHE/clusters/.$NAME.lock"; flock 9; }

case "$cmd" in
  up)
    lock
    if is_up; then
      log "cluster $NAME is already up ($(api_server))"
      echo "$KUBECONFIG_PATH"; exit 0
    fi
    if [ -e "$ROOT" ]; then
      log "cluster $NAME: stale state in $ROOT, cleaning up first"
      stop_cluster
    fi
    # gatewayapi: the CRDs the integration tests install (wandb_testkit::install_gateway_api).
    "$BUILD" etcd kwok k8s kubectl gatewayapi >&2
    resolve_kubectl
    K8S="$("$BUILD" --print-dir k8s)"; ETCD="$("$BUILD" --print-dir etcd)"; KWOK="$("$BUILD" --print-dir kwok)"
    mkdir -p "$ROOT"
    cat > "$ROOT/kwokctl.yaml" <<EOF
kind: KwokctlConfiguration
apiVersion: config.kwok.x-k8s.io/v1alpha1
options:
  runtime: binary
  bindAddress: 127.0.0.1
  disableQPSLimits: true
  quietPull: true
  etcdBinary: $ETCD/etcd
  kubeApiserverBinary: $K8S/kube-apiserver
  kubeControllerManagerBinary: $K8S/kube-controller-manager
  kubeSchedulerBinary: $K8S/kube-scheduler
  kwokControllerBinary: $KWOK/kwok
  kubectlBinary: $KUBECTL
  cacheDir: $ROOT/cache
EOF
    start=$SECONDS
    log "cluster $NAME: starting (state in $ROOT)"
    # From here on, a failure shows the logs and stops whatever was started.
    UP_OK=""
    trap '[ -n "$UP_OK" ] || { show_logs; log "up failed: stopping cluster $NAME"; stop_cluster || true; }' EXIT
    # kwokctl finds kubectl on PATH first: make it ours.
    mkdir -p "$ROOT/path"; ln -sf "$KUBECTL" "$ROOT/path/kubectl"
    # The default Service range (a /24, 254 ClusterIPs) is too small for benchmarks with many
    # instances, each with several Services.
    AUDIT_ARGS=()
    if [ -n "$AUDIT" ]; then
      # Metadata level: who (user agent), what (verb, resource, name), when; never a body.
      printf 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n' \
        > "$ROOT/audit-policy.yaml"
      AUDIT_ARGS=(--kube-audit-policy "$ROOT/audit-policy.yaml")
    fi
    PATH="$ROOT/path:$PATH" "$KWOKCTL" -c "$ROOT/kwokctl.yaml" create cluster --name "$NAME" \
      --runtime binary --kubeconfig "" --wait "${UP_TIMEOUT}s" "${AUDIT_ARGS[@]}" \
      --extra-args kube-apiserver=service-cluster-ip-range=10.96.0.0/16 </dev/null >>"$ROOT/kwokctl.log" 2>&1 9>&- \
      || die "kwokctl create cluster failed"
    # Offline: nothing may have been fetched.
    if grep -Eiq 'download|https?://(dl\.k8s\.io|github\.com)' "$ROOT/kwokctl.log"; then
      die "kwokctl tried to download something; every binary must be a local path"
    fi
    "$KWOKCTL" --name "$NAME" scale node --replicas "$NODES" </dev/null >>"$ROOT/kwokctl.log" 2>&1 9>&- \
      || die "kwokctl scale node failed"
    wait_until "the API to be ready" kc get --raw /readyz
    wait_until "$NODES node(s) to be Ready" \
      bash -c '[ "$("$0" --kubeconfig "$1" get nodes -o jsonpath="{range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\n\"}{end}" | grep -c True)" -ge "$2" ]' \
      "$KUBECTL" "$KUBECONFIG_PATH" "$NODES"
    wait_until "the default ServiceAccount" kc -n default get serviceaccount default
    UP_OK=1
    if [ -n "$AUDIT" ]; then
      AUDIT_LOG="$(find "$ROOT" -name 'audit.log' -print -quit)"
      [ -n "$AUDIT_LOG" ] || die "--audit: the API server wrote no audit.log under $ROOT"
      ln -sf "$AUDIT_LOG" "$ROOT/audit.log"
    fi
    log "cluster $NAME is up in $((SECONDS - start))s at $(api_server)"
    echo "$KUBECONFIG_PATH"
    ;;
  down)
    lock
    if [ ! -e "$ROOT" ] && [ -z "$(cluster_pids)" ]; then
      log "cluster $NAME is not running"; exit 0
    fi
    stop_cluster
    log "cluster $NAME: stopped, no process left"
    ;;
  status)
    if is_up; then
      echo "cluster $NAME: up"
      echo "api: $(api_server)"
      echo "kubeconfig: $KUBECONFIG_PATH"
      echo "pids: $(cluster_pids | tr '\n' ' ')"
    else
      echo "cluster $NAME: not up"
      [ ! -d "$DIR/pids" ] || for c in "${COMPONENTS[@]}"; do
        p="$(cat "$DIR/pids/$c.pid" 2>/dev/null || true)"
        if [ -n "$p" ] && alive "$p"; then echo "  $c: running (pid $p)"; else echo "  $c: not running"; fi
      done
      pids="$(cluster_pids)"; [ -z "$pids" ] || echo "leftover pids: $(echo "$pids" | tr '\n' ' ')"
      exit 1
    fi
    ;;
  prune)
    # Clusters whose processes are gone (e.g. a killed test run) but whose folder remains.
    for d in "$CACHE"/clusters/*/; do
      [ -d "$d" ] || continue
      n="$(basename "$d")"
      (
        exec 9>"$CACHE/clusters/.$n.lock"
        flock -n 9 || exit 0                       # an up/down is running on it
        [ -z "$(pgrep -f -- "$CACHE/clusters/$n/clusters/$n/" || true)" ] || exit 0
        log "pruning cluster $n (no process left)"
        rm -rf "$CACHE/clusters/$n"
      )
    done
    ;;
  kubeconfig)
    is_up || die "cluster $NAME is not up: run scripts/cluster.sh up --name $NAME"
    echo "$KUBECONFIG_PATH"
    ;;
  *) usage ;;
esac
