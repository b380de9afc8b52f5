#!/usr/bin/env bash
# Tests of the shipped artifacts (the `image` step of scripts/test.sh; needs root for chroot and
# KUBECONFIG pointing at a disposable local cluster, scripts/cluster.sh up):
#
#   1. scripts/build-image.sh, then scripts/release.sh (which builds the image again): both give
#      the same manifest digest (reproducible; the second build reuses the binary, so this proves
#      the image assembly, see docs/development.md). release.sh pushes the image and the chart to
#      a local CNCF Distribution registry (scripts/build-k8s-bins.sh registry) and checks the
#      digest the registry serves.
#   2. The CRD artifact installs with `kubectl apply -f` (client-side: its last-applied
#      annotation must fit) and with `kubectl apply --server-side -f`.
#   3. `helm install` of oci://<registry>/charts/wandb-operator into a namespace enforcing the
#      restricted Pod Security Standard: the Deployment names the pushed image by tag and digest
#      and rolls out (kwok's fake nodes run no containers); `helm test` passes.
#   4. The image itself: pulled back from the registry (skopeo), its layers unpacked (umoci) into
#      a root filesystem, its entrypoint and cmd run in a chroot as the image's user, in-cluster
#      mode: the chart ServiceAccount's token, the API server's CA and the namespace where
#      Kubernetes mounts them, KUBERNETES_SERVICE_HOST/PORT at the local API server. It must run
#      as that non-root uid, serve /readyz, and bring the chart's sample instance to Ready.
#      The image's `check` (what `helm test` runs) must pass in the chroot too (and fail, saying
#      why, for a missing Deployment), as the test's
#      ServiceAccount.
# Artifacts are built into $WANDB_IMAGE_TEST_OUT (default: a temporary folder).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

say() { printf '[image] %s\n' "$*" >&2; }
fail() { printf '[image] FAILED: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root (chroot into the image's root filesystem); CI runs as root"
[ -n "${KUBECONFIG:-}" ] || fail "set KUBECONFIG (scripts/cluster.sh up)"
HELM="${HELM:-$(scripts/build-k8s-bins.sh --print-dir helm)/helm}"
KUBECTL="${KUBECTL:-$(scripts/build-k8s-bins.sh --print-dir kubectl)/kubectl}"
REGISTRY_BIN="${WANDB_TEST_REGISTRY_BIN:-$(scripts/build-k8s-bins.sh --print-dir registry)/registry}"
[ -x "$REGISTRY_BIN" ] || scripts/build-k8s-bins.sh registry >&2
k() { "$KUBECTL" "$@"; }
k get --raw /readyz >/dev/null || fail "no API server at KUBECONFIG=$KUBECONFIG"
command -v skopeo >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends skopeo >/dev/null

WORK="$(mktemp -d)"
OUT="${WANDB_IMAGE_TEST_OUT:-$WORK/out}"
export HELM_CACHE_HOME="$WORK/helm/cache" HELM_CONFIG_HOME="$WORK/helm/config" HELM_DATA_HOME="$WORK/helm/data"
CLEANUP=()
cleanup() {
  local rc=$? i
  for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do eval "${CLEANUP[$i]}" >/dev/null 2>&1 || true; done
  [ "$rc" -eq 0 ] || { tail -n 40 "$WORK"/*.log 2>/dev/null >&2 || true; }
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"

# --- the local registry ----------------------------------------------------------------------
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
REGISTRY="127.0.0.1:$port"
mkdir -p "$WORK/registry"
printf 'version: 0.1\nlog: {level: warn}\nstorage:\n  filesystem: {rootdirectory: %s}\nhttp:\n  addr: %s\n' \
  "$WORK/registry" "$REGISTRY" >"$WORK/registry.yml"
OTEL_TRACES_EXPORTER=none OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none \
  "$REGISTRY_BIN" serve "$WORK/registry.yml" >/dev/null 2>"$WORK/registry.log" &
CLEANUP+=("kill $!")
http_ok() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" 2>/dev/null; }
for _ in $(seq 100); do http_ok "http://$REGISTRY/v2/" && break; sleep 0.2; done
http_ok "http://$REGISTRY/v2/" || fail "the registry did not start on $REGISTRY"

# --- 1. build twice, release, push -----------------------------------------------------------
start=$SECONDS
scripts/build-image.sh --out "$OUT/image" >/dev/null
say "build-image.sh: $((SECONDS - start)) s, digest $(cat "$OUT/image/digest"), layout $(du -sk "$OUT/image/oci" | cut -f1) KiB"
start=$SECONDS
scripts/release.sh "$VERSION" --out "$OUT/release" --push "$REGISTRY" --plain-http >/dev/null
DIGEST="$(cat "$OUT/image/digest")"
released="$(tar -xOf "$OUT/release/wandb-operator-$VERSION.tgz" wandb-operator/values.yaml | sed -n 's/^  digest: "\(.*\)"$/\1/p')"
[ "$released" = "$DIGEST" ] || fail "two builds of one commit differ: $DIGEST, then $released (release.sh)"
say "release.sh (second build, package, push): $((SECONDS - start)) s; same digest $DIGEST"
(cd "$OUT/release" && sha256sum --quiet -c SHA256SUMS) || fail "SHA256SUMS does not match the artifacts"
grep -q "^## \|^- " "$OUT/release/RELEASE_NOTES.md" || fail "RELEASE_NOTES.md has no CHANGELOG content"

# --- 2. the CRD, client-side then server-side -------------------------------------------------
CRD_FILE="$OUT/release/wandb-operator-$VERSION-crds.yaml"
CRD=weightsandbiases.apps.wandb.com
k apply -f "$CRD_FILE" >&2 || fail "kubectl apply -f (client-side) of the CRD failed"
size="$(k get crd "$CRD" -o jsonpath='{.metadata.annotations.kubectl\.kubernetes\.io/last-applied-configuration}' | wc -c)"
[ "$size" -gt 1000 ] || fail "the CRD has no last-applied-configuration annotation after kubectl apply"
say "kubectl apply -f of the CRD: ok, last-applied-configuration $size bytes (limit 262144)"
k apply --server-side --force-conflicts -f "$CRD_FILE" >&2 || fail "kubectl apply --server-side of the CRD failed"
k wait --for=condition=Established "crd/$CRD" --timeout=60s >/dev/null

# --- 3. helm install from oci:// with the pushed image ----------------------------------------
id="$(printf '%04x' $RANDOM)"
ns="image-$id" rel="wandb-operator"
k create namespace "$ns" >/dev/null
k label namespace "$ns" pod-security.kubernetes.io/enforce=restricted >/dev/null
CLEANUP+=("'$KUBECTL' delete namespace '$ns' --wait=false")
say "helm install oci://$REGISTRY/charts/wandb-operator --version $VERSION into $ns"
"$HELM" install "$rel" "oci://$REGISTRY/charts/wandb-operator" --version "$VERSION" --plain-http \
  -n "$ns" --set crds.install=false --wait=false >&2
CLEANUP+=("'$HELM' uninstall '$rel' -n '$ns'")
image="$(k get deployment "$rel" -n "$ns" -o jsonpath='{.spec.template.spec.containers[0].image}')"
[ "$image" = "$REGISTRY/wandb-operator:$VERSION@$DIGEST" ] || fail "the Deployment runs $image, not the pushed image"
k rollout status "deployment/$rel" -n "$ns" --timeout=120s >&2
"$HELM" test "$rel" -n "$ns" --timeout 3m >&2 || fail "helm test failed"

# --- 4. the image, run in a chroot in in-cluster mode ------------------------------------------
skopeo copy -q --src-tls-verify=false "docker://$REGISTRY/wandb-operator:$VERSION" "oci:$WORK/pulled:$VERSION"
umoci unpack --image "$WORK/pulled:$VERSION" "$WORK/bundle" >/dev/null
ROOTFS="$WORK/bundle/rootfs"
skopeo inspect --config "oci:$WORK/pulled:$VERSION" >"$WORK/config.json"
read -r USER_SPEC ENTRYPOINT < <(python3 -c '
import json, shlex, sys
c = json.load(open(sys.argv[1]))["config"]
print(c["User"], shlex.join(c.get("Entrypoint", []) + c.get("Cmd", [])))' "$WORK/config.json")
uid="${USER_SPEC%%:*}"
[[ "$uid" =~ ^[0-9]+$ ]] && [ "$uid" != 0 ] || fail "the image's user is $USER_SPEC, not a numeric non-root uid"
[ ! -e "$ROOTFS/bin/sh" ] || fail "the image has a shell"
[ "$(grep -c 'BEGIN CERTIFICATE' "$ROOTFS/etc/ssl/certs/ca-certificates.crt")" -gt 100 ] || fail "the image has no CA bundle"
grep -q "^[^:]*:x:$uid:" "$ROOTFS/etc/passwd" || fail "uid $uid is not in the image's /etc/passwd"

# What the kubelet mounts for the chart's ServiceAccount.
SA_DIR="$ROOTFS/var/run/secrets/kubernetes.io/serviceaccount"
mount_token() { # SERVICEACCOUNT
  mkdir -p "$SA_DIR"
  k create token "$1" -n "$ns" --duration=1h >"$SA_DIR/token"
  k config view --raw --minify --flatten -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d >"$SA_DIR/ca.crt"
  printf '%s' "$ns" >"$SA_DIR/namespace"
  chmod 0644 "$SA_DIR"/*
}
server="$(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
hostport="${server#https://}"
api_host="${hostport%:*}" api_port="${hostport##*:}"
# env(1) then chroot(8) exec the image's entrypoint: the process is the operator itself.
POD_ENV=(KUBERNETES_SERVICE_HOST="$api_host" KUBERNETES_SERVICE_PORT="$api_port"
  POD_NAME="$rel-chroot" POD_NAMESPACE="$ns")
CHROOT=("$(command -v chroot)" --userspec="$USER_SPEC" "$ROOTFS")

# The test's RBAC exists only while `helm test` runs: re-create it from the chart's hook.
"$HELM" template "$rel" "oci://$REGISTRY/charts/wandb-operator" --version "$VERSION" --plain-http -n "$ns" \
  --show-only templates/tests/check.yaml | python3 -c '
import sys
docs = sys.stdin.read().split("\n---\n")
print("\n---\n".join(d for d in docs if "\nkind: Job\n" not in d))' | k apply -n "$ns" -f - >/dev/null
mount_token "$rel-test"
env -i "${POD_ENV[@]}" "${CHROOT[@]}" /wandb-operator check --namespace "$ns" --deployment "$rel" --timeout 30 >&2 \
  || fail "wandb-operator check (helm test's command) failed in the image"
# ...and it fails, saying why, when the operator is not there.
if out="$(env -i "${POD_ENV[@]}" "${CHROOT[@]}" /wandb-operator check --namespace "$ns" --deployment missing --timeout 1 2>&1)"; then
  fail "wandb-operator check passed for a Deployment that does not exist"
fi
grep -q "FAILED: cannot read Deployment $ns/missing" <<<"$out" || fail "wandb-operator check failed without saying why: $out"

health="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mount_token "$rel"
read -r -a cmd <<<"$ENTRYPOINT"
env -i "${POD_ENV[@]}" "${CHROOT[@]}" "${cmd[@]}" --leader-elect --leader-election-namespace="$ns" \
  --metrics-bind-address=0 --health-probe-bind-address="127.0.0.1:$health" --log-format=text \
  >"$WORK/operator.log" 2>&1 &
op=$!
CLEANUP+=("kill $op")
for _ in $(seq 150); do http_ok "http://127.0.0.1:$health/readyz" && break; sleep 0.2; done
http_ok "http://127.0.0.1:$health/readyz" || fail "the operator in the image did not serve /readyz"
[ "$(readlink "/proc/$op/exe")" = "$ROOTFS/wandb-operator" ] || fail "pid $op is not the image's binary: $(readlink "/proc/$op/exe")"
running_uid="$(awk '/^Uid:/ {print $2}' "/proc/$op/status")"
[ "$running_uid" = "$uid" ] || fail "the operator runs as uid $running_uid, not the image's $uid"
say "the image's entrypoint runs in a chroot as uid $running_uid and is ready"

for i in 1 2 3; do
  k apply -f - >/dev/null <<PV
apiVersion: v1
kind: PersistentVolume
metadata: {name: image-$id-$i, labels: {wandb-image-test: "$id"}}
spec: {capacity: {storage: 1Ti}, accessModes: [ReadWriteOnce], persistentVolumeReclaimPolicy: Retain, hostPath: {path: /tmp/wandb-image/$id-$i, type: DirectoryOrCreate}}
PV
done
CLEANUP+=("'$KUBECTL' delete pv -l wandb-image-test=$id --wait=false")
"$HELM" upgrade "$rel" "oci://$REGISTRY/charts/wandb-operator" --version "$VERSION" --plain-http \
  -n "$ns" --reuse-values --set wandb.instance.enabled=true --wait=false >&2
if ! k wait --for=condition=Ready weightsandbiases.apps.wandb.com/wandb -n "$ns" --timeout=180s >&2; then
  tail -n 30 "$WORK/operator.log" >&2
  fail "the sample instance did not reach Ready under the operator image"
fi
say "the sample instance is Ready, reconciled by the image's binary in a chroot with the chart ServiceAccount"
k delete weightsandbiases.apps.wandb.com wandb -n "$ns" --timeout=120s >/dev/null || fail "the sample instance was not deleted"
say "image tests passed"
