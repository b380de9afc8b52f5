#!/usr/bin/env bash
# The project's test command (see README):
#
#   scripts/test.sh            # every step below, in order
#   scripts/test.sh fmt clippy # only the named steps
#
# Steps: fmt, chart-crd (the chart's CRD template matches deploy/crds/), clippy, cluster (start a
# dedicated local control plane), image (the shipped artifacts: the operator image built twice
# with the same digest, scripts/release.sh pushing it and the chart to a local registry, the CRD
# by `kubectl apply`, `helm install` from oci:// and `helm test`, the image's own entrypoint run in
# a chroot in in-cluster mode until an instance is Ready; scripts/test-image.sh, needs root),
# cargo-test (the whole workspace, `--include-ignored`, so
# integration tests run against that cluster), helm (the chart: lint, snapshots, schema, then
# install/uninstall on that cluster; after cargo-test, which applies the same CRD), terraform (the
# module in terraform/: fmt, offline init + validate with providers built from Go modules, then
# apply/destroy on that cluster; terraform/tests/run.sh). The cluster is
# stopped on exit, whatever happens. Exits non-zero on the first failure.
#
# To add a step: write a function `step_<name>` and add <name> to STEPS.
# Environment: WANDB_TEST_CLUSTER (cluster name; default wandb-test-<pid>, unique per run; a cluster
# of that name that is already up is used and left running), CARGO_TEST_ARGS (cargo
# test arguments before `--`, replacing the default `--workspace`; e.g. "-p wandb-testkit").
# The tests see the cluster's kubeconfig in WANDB_TEST_KUBECONFIG and KUBECONFIG, and the pinned
# kubectl and helm (scripts/build-k8s-bins.sh) first on PATH.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

STEPS=(fmt chart-crd clippy cluster image cargo-test helm terraform)
CLUSTER="${WANDB_TEST_CLUSTER:-wandb-test-$$}"
# Integration tests run in parallel and a fake node takes 110 pods: give them room.
export WANDB_CLUSTER_NODES="${WANDB_CLUSTER_NODES:-4}"
TMP="$(mktemp -d)"
CLUSTER_STARTED=""
CLUSTER_REUSED=""
CLUSTER_PID=""

say() { printf '\n==> [test.sh] %s\n' "$*" >&2; }
die() { printf '==> [test.sh] FAILED: %s\n' "$*" >&2; exit 1; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$CLUSTER_STARTED" ] && [ -z "$CLUSTER_REUSED" ]; then
    [ -z "$CLUSTER_PID" ] || wait "$CLUSTER_PID" 2>/dev/null || true
    say "stopping cluster $CLUSTER"
    scripts/cluster.sh down --name "$CLUSTER" || { echo "cluster $CLUSTER did not stop cleanly" >&2; rc=1; }
  fi
  rm -rf "$TMP"
  [ "$rc" -eq 0 ] && say "all steps passed" || say "FAILED (exit $rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The cluster starts in the background while fmt and clippy run (it needs ~20 s of CPU).
start_cluster_in_background() {
  [ -z "$CLUSTER_STARTED" ] || return 0
  CLUSTER_STARTED=1
  scripts/cluster.sh prune >&2 || true
  if scripts/cluster.sh status --name "$CLUSTER" >/dev/null 2>&1; then
    say "cluster $CLUSTER is already up: using it, and leaving it running"
    CLUSTER_REUSED=1
  fi
  scripts/cluster.sh up --name "$CLUSTER" >"$TMP/kubeconfig" 2>"$TMP/cluster-up.log" &
  CLUSTER_PID=$!
}

step_fmt() { cargo fmt --all -- --check; }

step_chart-crd() { scripts/gen-chart-crd.sh --check; }

step_clippy() { cargo clippy --workspace --all-targets -- -D warnings; }

step_cluster() {
  start_cluster_in_background
  local rc=0
  wait "$CLUSTER_PID" || rc=$?
  CLUSTER_PID=""
  if [ "$rc" -ne 0 ]; then
    cat "$TMP/cluster-up.log" >&2
    die "the local control plane (cluster $CLUSTER) did not start (exit $rc); output above"
  fi
  grep -v '^\[build-k8s-bins\].*cached$' "$TMP/cluster-up.log" >&2 || true
  WANDB_TEST_KUBECONFIG="$(tail -n 1 "$TMP/kubeconfig")"
  [ -f "$WANDB_TEST_KUBECONFIG" ] || die "cluster.sh up printed no kubeconfig path"
  export WANDB_TEST_KUBECONFIG KUBECONFIG="$WANDB_TEST_KUBECONFIG"
  # helm for the chart step; registry for the oci:// tests (testkit starts it on 127.0.0.1).
  scripts/build-k8s-bins.sh helm registry >&2
  PATH="$(scripts/build-k8s-bins.sh --print-dir kubectl):$(scripts/build-k8s-bins.sh --print-dir helm):$PATH"
  export PATH
  echo "kubectl: $(command -v kubectl), helm: $(command -v helm)" >&2
  echo "WANDB_TEST_KUBECONFIG=KUBECONFIG=$WANDB_TEST_KUBECONFIG" >&2
}

step_image() {
  [ -n "${WANDB_TEST_KUBECONFIG:-}" ] || die "no cluster: the cluster step must run before image"
  scripts/test-image.sh
}

step_cargo-test() {
  [ -n "${WANDB_TEST_KUBECONFIG:-}" ] || die "no cluster: the cluster step must run before cargo-test"
  # shellcheck disable=SC2086
  cargo test ${CARGO_TEST_ARGS:---workspace} -- --include-ignored
}

step_helm() {
  [ -n "${WANDB_TEST_KUBECONFIG:-}" ] || die "no cluster: the cluster step must run before helm"
  charts/wandb-operator/tests/run.sh all
}

step_terraform() {
  [ -n "${WANDB_TEST_KUBECONFIG:-}" ] || die "no cluster: the cluster step must run before terraform"
  terraform/tests/run.sh all
}

[ $# -eq 0 ] || STEPS=("$@")
for s in "${STEPS[@]}"; do
  declare -F "step_$s" >/dev/null || die "unknown step: $s (known: $(declare -F | sed -n 's/^declare -f step_//p' | tr '\n' ' '))"
done
# Start the cluster early if a later step needs it.
for s in "${STEPS[@]}"; do [ "$s" = cluster ] && start_cluster_in_background; done
for s in "${STEPS[@]}"; do
  say "$s"
  start=$SECONDS
  "step_$s"
  say "$s: ok ($((SECONDS - start)) s)"
done
