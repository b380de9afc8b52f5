#!/usr/bin/env bash
# Tests of the chart (run by `scripts/test.sh ... helm`, or alone):
#
#   charts/wandb-operator/tests/run.sh offline   # lint, snapshots, schema checks (no cluster)
#   charts/wandb-operator/tests/run.sh install   # helm install/upgrade/uninstall on $KUBECONFIG
#   charts/wandb-operator/tests/run.sh           # both
#
# offline: `helm lint --strict` in both RBAC modes; `helm template` compared with
# tests/snapshots/{cluster,namespaced}.yaml (UPDATE_SNAPSHOTS=1 rewrites them; the CRD document is
# replaced by a placeholder, scripts/gen-chart-crd.sh --check guards it); wrong values must fail.
#
# install (KUBECONFIG must point at a disposable local cluster, scripts/cluster.sh up):
#   1. cluster scope, crds.install=true, into a fresh namespace. A CRD already in the cluster
#      (applied by the Rust tests) is adopted: the Helm ownership metadata is set on it first.
#      Every object must be accepted, the Deployment must become Available (kwok), then
#      `helm upgrade` with wandb.instance.enabled creates the sample instance (validated by the
#      CRD's schema and CEL rules); `helm upgrade --set crds.install=false` and `helm uninstall`
#      must both keep the CRD.
#   2. namespaced scope, crds.install=false (the CRD kept from 1), tests/namespaced-values.yaml
#      with two fresh watched namespaces; Roles in each, the CRD-read ClusterRole, the instance.
# Helm's cache/config/data homes are temporary folders.
set -euo pipefail
CHART_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO="$(cd "$CHART_DIR/../.." && pwd)"
TESTS="$CHART_DIR/tests"
CRD=weightsandbiases.apps.wandb.com

HELM="${HELM:-$("$REPO/scripts/build-k8s-bins.sh" --print-dir helm)/helm}"
KUBECTL="${KUBECTL:-$("$REPO/scripts/build-k8s-bins.sh" --print-dir kubectl)/kubectl}"
[ -x "$HELM" ] || { echo "no helm at $HELM: run scripts/build-k8s-bins.sh helm" >&2; exit 1; }

WORK="$(mktemp -d)"
export HELM_CACHE_HOME="$WORK/cache" HELM_CONFIG_HOME="$WORK/config" HELM_DATA_HOME="$WORK/data"
CLEANUP=()
cleanup() {
  local rc=$? c
  for c in "${CLEANUP[@]}"; do eval "$c" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

say() { printf '[chart] %s\n' "$*" >&2; }
fail() { printf '[chart] FAILED: %s\n' "$*" >&2; exit 1; }

# helm template with the snapshot's fixed release name and namespace, the CRD document replaced
# by a placeholder (8000+ lines, checked by scripts/gen-chart-crd.sh --check).
render() {
  "$HELM" template wandb-operator "$CHART_DIR" --namespace wandb-system "$@" | awk '
    function flush() { if (doc != "") { if (doc ~ /# Source: [^\n]*\/templates\/crd\.yaml\n/) printf "---\n# Source: wandb-operator/templates/crd.yaml\n# (the CRD of deploy/crds/, elided)\n"; else printf "%s", doc } doc = "" }
    /^---$/ { flush() }
    { doc = doc $0 "\n" }
    END { flush() }
  '
}

offline() {
  say "helm lint --strict (cluster, namespaced, namespaced with every option)"
  "$HELM" lint --strict "$CHART_DIR" >/dev/null
  "$HELM" lint --strict "$CHART_DIR" --set rbac.scope=namespaced --set 'rbac.watchNamespaces={team-a}' >/dev/null
  "$HELM" lint --strict "$CHART_DIR" -f "$TESTS/namespaced-values.yaml" >/dev/null
  "$HELM" lint --strict "$CHART_DIR" -f "$CHART_DIR/values-openshift.yaml" >/dev/null

  say "no fixed uid: none by default, none with values-openshift.yaml over values that set one"
  # (crds.install=false: the CRD's descriptions name these fields)
  ! "$HELM" template x "$CHART_DIR" --set crds.install=false | grep -E 'runAsUser|runAsGroup|fsGroup' >&2 \
    || fail "the chart sets a fixed uid by default"
  local out
  printf 'podSecurityContext: {runAsUser: 1000, fsGroup: 1000}\nsecurityContext: {runAsUser: 1000}\n' >"$WORK/uid.yaml"
  out="$("$HELM" template x "$CHART_DIR" -f "$WORK/uid.yaml" -f "$CHART_DIR/values-openshift.yaml" \
    --set wandb.instance.enabled=true --set crds.install=false)"
  ! grep -E 'runAsUser|runAsGroup|fsGroup' <<<"$out" >&2 || fail "values-openshift.yaml leaves a fixed uid"
  grep -q 'managedServiceUids: platform' <<<"$out" || fail "values-openshift.yaml does not set managedServiceUids on the sample instance"
  grep -q 'runAsNonRoot: true' <<<"$out" || fail "values-openshift.yaml dropped runAsNonRoot"

  say "helm test hook: a Job running \`wandb-operator check\` with the operator image, its own read-only RBAC"
  out="$("$HELM" template x "$CHART_DIR" --show-only templates/tests/check.yaml --set image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef)"
  grep -q '"helm.sh/hook": test\|helm.sh/hook: test' <<<"$out" || fail "the test objects are not helm test hooks"
  grep -qF 'image: "ghcr.io/wandb/wandb-operator:0.1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"' <<<"$out" \
    || fail "the test Job does not run the operator image (tag and digest)"
  grep -q -- '- check' <<<"$out" || fail "the test Job does not run wandb-operator check"

  local name args rc=0
  for name in cluster namespaced; do
    args=()
    [ "$name" = cluster ] || args=(-f "$TESTS/namespaced-values.yaml")
    render "${args[@]}" >"$WORK/$name.yaml"
    if [ -n "${UPDATE_SNAPSHOTS:-}" ]; then
      cp "$WORK/$name.yaml" "$TESTS/snapshots/$name.yaml"
      say "snapshot $name: written"
    elif ! diff -u "$TESTS/snapshots/$name.yaml" "$WORK/$name.yaml" >&2; then
      say "snapshot $name differs (above); UPDATE_SNAPSHOTS=1 $0 offline rewrites it"
      rc=1
    else
      say "snapshot $name: matches"
    fi
  done
  [ "$rc" -eq 0 ] || fail "snapshots differ"
  grep -q 'helm.sh/resource-policy: keep' <("$HELM" template x "$CHART_DIR" --show-only templates/crd.yaml) \
    || fail "the CRD lacks helm.sh/resource-policy: keep"

  say "values.schema.json rejects wrong values"
  expect_invalid "got string, want integer" --set replicas=two
  expect_invalid "got string, want boolean" --set-string crds.install=yes
  expect_invalid "minItems" --set rbac.scope=namespaced
  expect_invalid "rbac/scope" --set rbac.scope=both
  expect_invalid "additional properties 'replicaCount' not allowed" --set replicaCount=3
  expect_invalid "logging/format" --set logging.format=xml
  expect_invalid "caCerts/certs/0" --set 'caCerts.certs[0]=not-a-pem'
  expect_invalid "leaderElection.enabled=true" --set leaderElection.enabled=false
  expect_invalid "rbac.watchNamespaces is only for rbac.scope=namespaced" --set 'rbac.watchNamespaces={a}'
  expect_invalid "defaultManifestRepository" --set defaultManifestRepository=https://example.com/m
  # ...and a good one reaches the operator's arguments.
  "$HELM" template x "$CHART_DIR" --set defaultManifestRepository=oci://mirror.example.com/wandb/server-manifest \
    | grep -F -- "--default-manifest-repository=oci://mirror.example.com/wandb/server-manifest" >/dev/null \
    || fail "defaultManifestRepository is not passed to the operator"
}

# expect_invalid <fragment of the error> <helm template args...>
expect_invalid() {
  local want="$1" out
  shift
  if out="$("$HELM" template x "$CHART_DIR" "$@" 2>&1)"; then
    fail "helm template $* succeeded; it must fail"
  fi
  grep -qF -- "$want" <<<"$out" || fail "helm template $* failed without \"$want\":"$'\n'"$out"
  say "  rejected: $* ($want)"
}

k() { "$KUBECTL" "$@"; }

# can_i USER VERB GROUP RESOURCE NAMESPACE: a SubjectAccessReview, which (unlike `kubectl auth
# can-i`) needs no discovery, so it answers for CRD kinds the cluster may not serve (Gateway API).
can_i() {
  local allowed
  allowed="$(k create -o 'jsonpath={.status.allowed}' -f - <<EOF
apiVersion: authorization.k8s.io/v1
kind: SubjectAccessReview
spec:
  user: "$1"
  resourceAttributes: {verb: "$2", group: "$3", resource: "$4", namespace: "$5"}
EOF
)"
  [ "$allowed" = true ]
}

# anonymous_can_get PATH: a SubjectAccessReview for an unauthenticated GET (`kubectl auth can-i
# --as=system:anonymous` cannot answer: the anonymous user may not create the review itself).
anonymous_can_get() {
  local allowed
  allowed="$(k create -o 'jsonpath={.status.allowed}' -f - <<EOF
apiVersion: authorization.k8s.io/v1
kind: SubjectAccessReview
spec:
  user: system:anonymous
  groups: [system:unauthenticated]
  nonResourceAttributes: {verb: get, path: "$1"}
EOF
)"
  [ "$allowed" = true ]
}

# Runs the operator binary on this host with only the chart ServiceAccount's token (a
# TokenRequest) as credentials: what it can do is exactly what the chart grants. Prints its pid.
OPERATOR_PID=""
run_as_chart_sa() { # NS REL [run args...]
  local ns="$1" rel="$2"; shift 2
  local op="${WANDB_OPERATOR_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/debug/wandb-operator}"
  [ -x "$op" ] || (cd "$REPO" && cargo build -q -p wandb-operator) || fail "cannot build wandb-operator"
  local kc="$WORK/sa-$rel.kubeconfig" server ca token
  server="$(k config view --raw --minify --flatten -o jsonpath='{.clusters[0].cluster.server}')"
  ca="$(k config view --raw --minify --flatten -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')"
  token="$(k create token "$rel" -n "$ns" --duration=1h)"
  cat >"$kc" <<KC
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "$server", certificate-authority-data: "$ca"}}]
users: [{name: sa, user: {token: "$token"}}]
contexts: [{name: c, context: {cluster: c, user: sa}}]
current-context: c
KC
  KUBECONFIG="$kc" POD_NAME="$rel-host" "$op" run --leader-elect --leader-election-namespace "$ns" \
    --metrics-bind-address 0 --health-probe-bind-address 0 "$@" >"$WORK/operator-$rel.log" 2>&1 &
  OPERATOR_PID=$!
  CLEANUP+=("kill $OPERATOR_PID 2>/dev/null")
}

# hostPath volumes for the sample instance's managed services (kwok has no provisioner).
volumes() { # ID
  local i
  for i in 1 2 3; do
    k apply -f - >/dev/null <<PV
apiVersion: v1
kind: PersistentVolume
metadata: {name: chart-$1-$i, labels: {wandb-chart-test: "$1"}}
spec: {capacity: {storage: 1Ti}, accessModes: [ReadWriteOnce], persistentVolumeReclaimPolicy: Retain, hostPath: {path: /tmp/wandb-chart/$1-$i, type: DirectoryOrCreate}}
PV
  done
  CLEANUP+=("'$KUBECTL' delete pv -l wandb-chart-test=$1 --wait=false")
}

# The sample instance reaches Ready under the operator holding only the chart's permissions.
expect_ready_as_chart_sa() { # NAMESPACE
  if ! k wait --for=condition=Ready weightsandbiases.apps.wandb.com/wandb -n "$1" --timeout=180s >&2; then
    tail -30 "$WORK"/operator-*.log >&2 || true
    fail "the sample instance in $1 did not reach Ready with the chart's permissions"
  fi
  say "  the sample instance in $1 is Ready, reconciled with only the chart ServiceAccount's token"
}

# Deletes the sample instance while the operator runs (its finalizer needs it), then stops it.
stop_operator_after_delete() { # NAMESPACE
  k delete weightsandbiases.apps.wandb.com wandb -n "$1" --timeout=120s >/dev/null || fail "the sample instance was not deleted"
  kill "$OPERATOR_PID"; wait "$OPERATOR_PID" 2>/dev/null || true
}

install() {
  [ -n "${KUBECONFIG:-}" ] || fail "set KUBECONFIG (scripts/cluster.sh up)"
  k get --raw /readyz >/dev/null || fail "no API server at KUBECONFIG=$KUBECONFIG"
  local id rel ns out
  id="$(printf '%04x%04x' $RANDOM $RANDOM)"

  # 1. cluster scope, with the CRD.
  rel="wandb-operator-c$id" ns="chart-cluster-$id"
  CLEANUP+=("'$HELM' uninstall '$rel' -n '$ns'" "'$KUBECTL' delete namespace '$ns' --wait=false")
  if k get crd "$CRD" >/dev/null 2>&1; then
    say "the CRD exists already (applied by the Rust tests, or kept by an earlier release): adopting it into release $rel"
    k label crd "$CRD" app.kubernetes.io/managed-by=Helm --overwrite >/dev/null
    k annotate crd "$CRD" meta.helm.sh/release-name="$rel" meta.helm.sh/release-namespace="$ns" --overwrite >/dev/null
    # A test operator may have pointed the conversion webhook at its own URL; Helm's patch adds
    # the chart's Service beside it (there is no earlier release to diff against), which the API
    # server refuses (exactly one of url or service). Start the adopted CRD without a webhook.
    k patch crd "$CRD" --type=merge -p '{"spec":{"conversion":{"strategy":"None","webhook":null}}}' >/dev/null
  fi
  # The release namespaces enforce the restricted Pod Security Standard: the operator Pods must
  # be admitted under it (rollout status below).
  k create namespace "$ns" >/dev/null
  k label namespace "$ns" pod-security.kubernetes.io/enforce=restricted >/dev/null
  say "helm install $rel (rbac.scope=cluster, crds.install=true) into namespace $ns"
  "$HELM" install "$rel" "$CHART_DIR" -n "$ns" --wait=false \
    --set image.repository=example.invalid/wandb-operator >&2
  k get deployment "$rel" -n "$ns" >/dev/null
  k get serviceaccount "$rel" -n "$ns" >/dev/null
  k get clusterrole,clusterrolebinding "$ns-$rel" >/dev/null
  k get role,rolebinding "$rel-leader-election" -n "$ns" >/dev/null
  k get service "$rel-metrics" -n "$ns" >/dev/null
  k get poddisruptionbudget "$rel" -n "$ns" >/dev/null
  k wait --for=condition=Established "crd/$CRD" --timeout=60s >/dev/null
  [ "$(k get crd "$CRD" -o jsonpath='{.metadata.annotations.helm\.sh/resource-policy}')" = keep ] \
    || fail "the installed CRD is not annotated helm.sh/resource-policy=keep"
  k rollout status "deployment/$rel" -n "$ns" --timeout=120s >&2
  # The operator's permissions, as the API server evaluates them.
  local sa="system:serviceaccount:$ns:$rel"
  k auth can-i patch weightsandbiases.apps.wandb.com -A --as "$sa" >/dev/null || fail "$sa cannot patch instances"
  k auth can-i create secrets -n default --as "$sa" >/dev/null || fail "$sa cannot create secrets"
  can_i "$sa" delete gateway.networking.k8s.io httproutes default || fail "$sa cannot delete httproutes"
  k auth can-i update leases.coordination.k8s.io -n "$ns" --as "$sa" >/dev/null || fail "$sa cannot update leases"
  ! k auth can-i update leases.coordination.k8s.io -n default --as "$sa" >/dev/null 2>&1 || fail "$sa can update leases outside $ns"
  ! k auth can-i create weightsandbiases.apps.wandb.com -n default --as "$sa" >/dev/null 2>&1 || fail "$sa can create instances"
  ! k auth can-i get nodes --as "$sa" >/dev/null 2>&1 || fail "$sa can read nodes"
  ! k get clusterrolebinding "$ns-$rel-issuer-discovery" >/dev/null 2>&1 \
    || fail "rbac.unauthenticatedIssuerDiscovery is off by default, yet its ClusterRoleBinding exists"

  say "helm upgrade $rel with the sample instance (wandb.instance.enabled=true)"
  "$HELM" upgrade "$rel" "$CHART_DIR" -n "$ns" --reuse-values --wait=false --set wandb.instance.enabled=true >&2
  k get weightsandbiases.apps.wandb.com wandb -n "$ns" >/dev/null
  volumes "c$id"
  run_as_chart_sa "$ns" "$rel"
  expect_ready_as_chart_sa "$ns"

  say "helm upgrade $rel with crds.install=false: the CRD must stay (resource-policy keep)"
  "$HELM" upgrade "$rel" "$CHART_DIR" -n "$ns" --reuse-values --wait=false --set crds.install=false >&2
  k get crd "$CRD" >/dev/null 2>&1 || fail "helm upgrade --set crds.install=false deleted the CRD"
  k get weightsandbiases.apps.wandb.com wandb -n "$ns" >/dev/null

  stop_operator_after_delete "$ns"
  say "helm uninstall $rel: the CRD must stay"
  out="$("$HELM" uninstall "$rel" -n "$ns" 2>&1)" || fail "helm uninstall: $out"
  printf '%s\n' "$out" >&2
  k get crd "$CRD" >/dev/null 2>&1 || fail "helm uninstall deleted the CRD"
  ! k get deployment "$rel" -n "$ns" >/dev/null 2>&1 || fail "the Deployment survived helm uninstall"
  ! k get clusterrole "$ns-$rel" >/dev/null 2>&1 || fail "the ClusterRole survived helm uninstall"
  k delete namespace "$ns" --wait=false >/dev/null

  # 2. namespaced scope, without the CRD (kept from 1), every option of namespaced-values.yaml.
  rel="wandb-operator-n$id" ns="chart-ns-$id"
  local wa="chart-ns-$id-a" wb="chart-ns-$id-b"
  CLEANUP+=("'$HELM' uninstall '$rel' -n '$ns'" "'$KUBECTL' delete namespace '$ns' '$wa' '$wb' --wait=false")
  k create namespace "$ns" >/dev/null
  k label namespace "$ns" pod-security.kubernetes.io/enforce=restricted >/dev/null
  k create namespace "$wa" >/dev/null
  k create namespace "$wb" >/dev/null
  k create secret generic proxy-credentials -n "$ns" --from-literal=HTTPS_PROXY=http://user:pw@proxy.example.com:3128 >/dev/null
  say "helm install $rel (rbac.scope=namespaced over $wa,$wb, crds.install=false) into namespace $ns"
  "$HELM" install "$rel" "$CHART_DIR" -n "$ns" --wait=false -f "$TESTS/namespaced-values.yaml" \
    --set image.repository=example.invalid/wandb-operator --set image.digest= \
    --set "rbac.watchNamespaces={$wa,$wb}" --set wandb.instance.namespace="$wa" \
    --set metrics.serviceMonitor.enabled=false --set priorityClassName= >&2
  k get deployment "$rel" -n "$ns" >/dev/null
  k get serviceaccount "$rel" -n "$ns" >/dev/null
  k get configmap "$rel-ca-certs" -n "$ns" >/dev/null
  k get networkpolicy "$rel" -n "$ns" >/dev/null
  k get role,rolebinding "$rel" -n "$wa" >/dev/null
  k get role,rolebinding "$rel" -n "$wb" >/dev/null
  k get clusterrole,clusterrolebinding "$ns-$rel-crd" >/dev/null
  # rbac.unauthenticatedIssuerDiscovery (namespaced-values.yaml): anonymous clients may read the
  # ServiceAccount issuer's discovery document and keys.
  k get clusterrolebinding "$ns-$rel-issuer-discovery" >/dev/null
  anonymous_can_get /openid/v1/jwks \
    || fail "anonymous clients cannot read /openid/v1/jwks with rbac.unauthenticatedIssuerDiscovery"
  ! k get clusterrole "$ns-$rel" >/dev/null 2>&1 || fail "namespaced scope rendered the cluster-wide ClusterRole"
  k get weightsandbiases.apps.wandb.com wandb -n "$wa" >/dev/null
  volumes "n$id"
  run_as_chart_sa "$ns" "$rel" --namespaces "$wa,$wb"
  expect_ready_as_chart_sa "$wa"
  stop_operator_after_delete "$wa"
  [ "$(k get deployment "$rel" -n "$ns" -o jsonpath='{.spec.template.spec.containers[0].args}')" = \
    "[\"run\",\"--metrics-bind-address=:8080\",\"--health-probe-bind-address=:8081\",\"--leader-elect\",\"--leader-election-namespace=$ns\",\"--namespaces=$wa,$wb\",\"--log-format=text\",\"--log-level=debug\",\"--concurrency=8\",\"--webhook-bind-address=:9443\",\"--webhook-service=$rel-webhook\",\"--webhook-secret=$rel-webhook-cert\",\"--example-flag=1\"]" ] \
    || fail "unexpected operator args: $(k get deployment "$rel" -n "$ns" -o jsonpath='{.spec.template.spec.containers[0].args}')"
  k rollout status "deployment/$rel" -n "$ns" --timeout=120s >&2
  sa="system:serviceaccount:$ns:$rel"
  k auth can-i create secrets -n "$wa" --as "$sa" >/dev/null || fail "$sa cannot create secrets in $wa"
  k auth can-i create roles.rbac.authorization.k8s.io -n "$wb" --as "$sa" >/dev/null || fail "$sa cannot create roles in $wb"
  can_i "$sa" patch gateway.networking.k8s.io gateways "$wb" || fail "$sa cannot patch gateways in $wb"
  ! can_i "$sa" get gateway.networking.k8s.io gateways default || fail "$sa can read gateways outside its namespaces"
  ! k auth can-i get secrets -n default --as "$sa" >/dev/null 2>&1 || fail "$sa can read secrets outside its namespaces"
  ! k auth can-i list weightsandbiases.apps.wandb.com -A --as "$sa" >/dev/null 2>&1 || fail "$sa can list instances cluster-wide"
  k auth can-i get "customresourcedefinitions/$CRD" --as "$sa" >/dev/null 2>&1 || fail "$sa cannot read its CRD"
  ! k auth can-i get customresourcedefinitions/other.example.com --as "$sa" >/dev/null 2>&1 || fail "$sa can read other CRDs"

  say "helm uninstall $rel"
  "$HELM" uninstall "$rel" -n "$ns" >&2
  k get crd "$CRD" >/dev/null 2>&1 || fail "the CRD is gone"
  ! k get role "$rel" -n "$wa" >/dev/null 2>&1 || fail "the Role in $wa survived helm uninstall"
  ! k get clusterrolebinding "$ns-$rel-issuer-discovery" >/dev/null 2>&1 \
    || fail "the issuer-discovery ClusterRoleBinding survived helm uninstall"
  k delete namespace "$ns" "$wa" "$wb" --wait=false >/dev/null
  say "install tests passed"
}

case "${1:-all}" in
  offline) offline ;;
  install) install ;;
  all) offline; install ;;
  *) echo "usage: $0 [offline|install|all]" >&2; exit 2 ;;
esac
