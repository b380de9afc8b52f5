#!/usr/bin/env bash
# Builds the local control plane's binaries from Go modules (through the module proxy) into a
# cache outside the repo. Each component has a stamp holding the recipe inputs; a component whose
# stamp matches is not rebuilt, so a second run does nothing.
#
#   scripts/build-k8s-bins.sh [all|k8s|etcd|kwok|helm|kubectl|registry|gatewayapi|tfproviders]...
#   scripts/build-k8s-bins.sh --print-dir COMPONENT     # the folder holding that component's binaries
#
# `all` = etcd, kwok (kwok + kwokctl), helm, k8s (kube-apiserver, kube-controller-manager,
# kube-scheduler), kubectl (same version as the server: no version skew, no dependence on the
# machine's kubectl), registry (the CNCF Distribution registry, for the oci:// manifest tests: the
# testkit starts it on 127.0.0.1), gatewayapi (not a binary: the Gateway API standard-channel CRDs
# gatewayclasses, gateways, httproutes and referencegrants, copied from the Go module
# sigs.k8s.io/gateway-api's config/crd/standard/; the operator's integration tests install them).
# Progress goes to stderr. Concurrent runs wait for each other
# (a lock in the cache), so parallel `cluster.sh up` calls never build the same thing twice.
#
# `tfproviders` (not part of `all`) builds the Terraform providers hashicorp/helm and
# hashicorp/kubernetes from their Go modules for the offline Terraform tests (terraform/), and lays
# them out as a filesystem mirror, with a Terraform CLI config that uses only that mirror:
#   <dir>/mirror/registry.terraform.io/hashicorp/<type>/<version>/linux_amd64/terraform-provider-<type>_v<version>
#   <dir>/terraformrc        (TF_CLI_CONFIG_FILE=<dir>/terraformrc)
# Only the old v1-tagged releases are served by the module proxy (helm v1.3.2, kubernetes v1.13.4;
# the v2/v3 tags lack a /vN module suffix and commit queries are refused), see terraform/README.md.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-0.8.0}"
HELM_VERSION="${HELM_VERSION:-3.22.0}"
REGISTRY_VERSION="${REGISTRY_VERSION:-3.1.2}"
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-1.4.1}"
TF_HELM_PROVIDER_VERSION="${TF_HELM_PROVIDER_VERSION:-1.3.2}"
TF_K8S_PROVIDER_VERSION="${TF_K8S_PROVIDER_VERSION:-1.13.4}"
CACHE="${WANDB_OP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wandb-operator}"
BIN_ROOT="$CACHE/bin"

export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-}"

log() { printf '[build-k8s-bins] %s\n' "$*" >&2; }

need_go() {
  command -v go >/dev/null || { log "go is not installed; it is needed to build the control plane"; exit 1; }
}

# stamp_ok DIR STAMP: true when DIR/.stamp holds exactly STAMP.
stamp_ok() { [ -f "$1/.stamp" ] && [ "$(cat "$1/.stamp")" = "$2" ]; }

# k8s_wrapper_build OUT STAMP PKG...: builds main packages of k8s.io/kubernetes at $K8S_VERSION into
# OUT with a throw-away wrapper module that replaces every staging module by its published version.
k8s_wrapper_build() {
  local out="$1" stamp="$2"; shift 2
  stamp_ok "$out" "$stamp" && { log "$(basename "$out"): cached"; return; }
  local minor="${K8S_VERSION#*.}"; minor="${minor%%.*}"
  local staging="v0.$minor.${K8S_VERSION##*.}"
  local work; work="$(mktemp -d)"
  log "$(basename "$out"): building $* in $work (a cold build of the k8s trio takes 15-30 min on 2 cores)"
  (
    cd "$work"
    go mod init local.invalid/k8s-bin-build >/dev/null 2>&1
    local modfile
    modfile="$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
    # Derive the staging replace set and godebug settings from the exact go.mod we build.
    go mod edit -json "$modfile" | python3 -c '
import json, sys
m = json.load(sys.stdin)
for r in m.get("Replace") or []:
    if r["New"]["Path"].startswith("./staging/"):
        print("replace", r["Old"]["Path"])
for g in m.get("Godebug") or []:
    print("godebug", g["Key"] + "=" + g["Value"])
print("go", m["Go"])
' > plan.txt
    go mod edit -go="$(awk '$1=="go"{print $2}' plan.txt)"
    while read -r kind val; do
      case "$kind" in
        godebug) go mod edit -godebug="$val" ;;
        replace)
          if go list -m -json "$val@$staging" >/dev/null 2>&1; then
            go mod edit -replace="$val=$val@$staging"
          else
            # Not served by the proxy; fine as long as the built commands import none of it.
            log "stubbing $val (not served at $staging)"
            mkdir -p "stub/$val"; printf 'module %s\n' "$val" > "stub/$val/go.mod"
            go mod edit -replace="$val=./stub/$val"
          fi ;;
      esac
    done < plan.txt
    local tools=() p
    for p in "$@"; do tools+=("-tool=$p"); done
    go mod edit -require="k8s.io/kubernetes@v$K8S_VERSION" "${tools[@]}"
    go mod tidy >/dev/null
    local ld="-s -w"
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld="$ld -X '$p.gitVersion=v$K8S_VERSION' -X '$p.gitMajor=1' -X '$p.gitMinor=$minor'"
      ld="$ld -X '$p.gitCommit=0000000000000000000000000000000000000000' -X '$p.gitTreeState=clean'"
      ld="$ld -X '$p.buildDate=2026-01-01T00:00:00Z'"
    done
    mkdir -p "$out.tmp"
    # One invocation for all packages: shared packages compile once and both cores stay busy.
    go build -trimpath -buildvcs=false -ldflags "$ld" -o "$out.tmp/" "$@"
  )
  rm -rf "$work" "$out"; mv "$out.tmp" "$out"
  local bin; bin="$out/$(basename "$1")"
  # Output captured first: `producer | grep -q` under pipefail fails at random when grep exits
  # before the producer has written everything (SIGPIPE, exit 141).
  local said; said="$("$bin" --version 2>/dev/null || "$bin" version --client 2>/dev/null || true)"
  [[ "$said" == *"v$K8S_VERSION"* ]] || { log "$bin is not stamped v$K8S_VERSION"; exit 1; }
  echo "$stamp" > "$out/.stamp"
  log "$(basename "$out"): built"
}

build_k8s() {
  k8s_wrapper_build "$BIN_ROOT/k8s-v$K8S_VERSION" "k8s v$K8S_VERSION cgo=0 trimpath stamped" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
}

build_kubectl() {
  k8s_wrapper_build "$BIN_ROOT/kubectl-v$K8S_VERSION" "kubectl v$K8S_VERSION cgo=0 trimpath stamped" \
    k8s.io/kubernetes/cmd/kubectl
}

build_etcd() {
  local out="$BIN_ROOT/etcd-v$ETCD_VERSION" stamp="etcd v$ETCD_VERSION cgo=0"
  stamp_ok "$out" "$stamp" && { log "etcd v$ETCD_VERSION: cached"; return; }
  local work; work="$(mktemp -d)"
  log "etcd v$ETCD_VERSION: building"
  (
    cd "$work"
    go mod init local.invalid/etcd-build >/dev/null 2>&1
    go get -tool "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" 2>&1 | grep -v "^go: downloading" >&2 || true
    go list -m "go.etcd.io/etcd/server/v3" >/dev/null
    mkdir -p "$out.tmp"
    go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
  )
  rm -rf "$work" "$out"; mv "$out.tmp" "$out"
  local said; said="$("$out/etcd" --version)"
  [[ "$said" == *"$ETCD_VERSION"* ]] || { log "etcd is not v$ETCD_VERSION"; exit 1; }
  echo "$stamp" > "$out/.stamp"
  log "etcd v$ETCD_VERSION: built"
}

build_kwok() {
  local out="$BIN_ROOT/kwok-v$KWOK_VERSION" stamp="kwok v$KWOK_VERSION cgo=0"
  stamp_ok "$out" "$stamp" && { log "kwok v$KWOK_VERSION: cached"; return; }
  log "kwok v$KWOK_VERSION: building"
  mkdir -p "$out.tmp"
  GOBIN="$out.tmp" go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@v$KWOK_VERSION"
  # The default pod/node stages ship in the module; keep a copy beside the binaries.
  local modroot; modroot="$(go env GOMODCACHE)/sigs.k8s.io/kwok@v$KWOK_VERSION"
  mkdir -p "$out.tmp/stage"; cp -r "$modroot/kustomize/stage/." "$out.tmp/stage/"; chmod -R u+w "$out.tmp/stage"
  rm -rf "$out"; mv "$out.tmp" "$out"
  echo "$stamp" > "$out/.stamp"
  log "kwok v$KWOK_VERSION: built"
}

build_helm() {
  local out="$BIN_ROOT/helm-v$HELM_VERSION" stamp="helm v$HELM_VERSION k8s=$K8S_VERSION"
  stamp_ok "$out" "$stamp" && { log "helm v$HELM_VERSION: cached"; return; }
  log "helm v$HELM_VERSION: building"
  local minor="${K8S_VERSION#*.}"; minor="${minor%%.*}"
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION"
  ld="$ld -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
  ld="$ld -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
  mkdir -p "$out.tmp"
  GOBIN="$out.tmp" go install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
  rm -rf "$out"; mv "$out.tmp" "$out"
  echo "$stamp" > "$out/.stamp"
  log "helm v$HELM_VERSION: built"
}

build_registry() {
  local out="$BIN_ROOT/registry-v$REGISTRY_VERSION" stamp="registry v$REGISTRY_VERSION cgo=0"
  stamp_ok "$out" "$stamp" && { log "registry v$REGISTRY_VERSION: cached"; return; }
  log "registry v$REGISTRY_VERSION: building"
  mkdir -p "$out.tmp"
  GOBIN="$out.tmp" go install -trimpath -ldflags "-s -w" \
    "github.com/distribution/distribution/v3/cmd/registry@v$REGISTRY_VERSION"
  rm -rf "$out"; mv "$out.tmp" "$out"
  "$out/registry" --version >/dev/null
  echo "$stamp" > "$out/.stamp"
  log "registry v$REGISTRY_VERSION: built"
}

GATEWAY_API_CRDS=(gatewayclasses gateways httproutes referencegrants)

build_gatewayapi() {
  local out stamp
  out="$(print_dir gatewayapi)"
  stamp="gateway-api v$GATEWAY_API_VERSION standard ${GATEWAY_API_CRDS[*]}"
  stamp_ok "$out" "$stamp" && { log "gatewayapi v$GATEWAY_API_VERSION: cached"; return; }
  log "gatewayapi v$GATEWAY_API_VERSION: fetching the standard-channel CRDs"
  local work dir r
  work="$(mktemp -d)"
  # Outside any module, so that no go.mod around the caller is consulted or changed.
  dir="$(cd "$work" && go mod download -json "sigs.k8s.io/gateway-api@v$GATEWAY_API_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  rm -rf "$work" "$out.tmp"; mkdir -p "$out.tmp"
  for r in "${GATEWAY_API_CRDS[@]}"; do
    cp "$dir/config/crd/standard/gateway.networking.k8s.io_$r.yaml" "$out.tmp/"
  done
  chmod -R u+w "$out.tmp" # the module cache is read-only
  rm -rf "$out"; mv "$out.tmp" "$out"
  echo "$stamp" > "$out/.stamp"
  log "gatewayapi v$GATEWAY_API_VERSION: ready"
}

# tfprovider_build OUTDIR MODULE VERSION: builds a Terraform provider (main package at its module
# root) with a throw-away wrapper module that copies the provider's own replace directives (its
# go.mod pins forks of some dependencies) and stubs vbom.ml/util, which the proxy does not serve
# and the built provider does not import.
tfprovider_build() {
  local outdir="$1" mod="$2" ver="$3" work
  work="$(mktemp -d)"
  (
    cd "$work"
    go mod init local.invalid/tfprovider-build >/dev/null 2>&1
    mkdir -p stub/vbom.ml/util; printf 'module vbom.ml/util\n' > stub/vbom.ml/util/go.mod
    local modfile rep
    modfile="$(go mod download -json "$mod@v$ver" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
    go mod edit -json "$modfile" | python3 -c '
import json, sys
m = json.load(sys.stdin)
for r in m.get("Replace") or []:
    old = r["Old"]["Path"] + ("@" + r["Old"]["Version"] if r["Old"].get("Version") else "")
    new = r["New"]["Path"] + ("@" + r["New"]["Version"] if r["New"].get("Version") else "")
    print(old + "=" + new)
' > replaces.txt
    while read -r rep; do go mod edit -replace="$rep"; done < replaces.txt
    go mod edit -replace=vbom.ml/util=./stub/vbom.ml/util -require="$mod@v$ver"
    printf 'package main\n\nimport _ "%s"\n' "$mod" > tools.go
    # -e: the provider's test-only imports include modules the proxy refuses; the build needs none.
    go mod tidy -e >/dev/null 2>&1 || true
    go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$outdir/" "$mod"
  )
  rm -rf "$work"
}

build_tfproviders() {
  local out stamp
  out="$(print_dir tfproviders)"
  stamp="tfproviders helm v$TF_HELM_PROVIDER_VERSION kubernetes v$TF_K8S_PROVIDER_VERSION cgo=0 mirror+terraformrc"
  stamp_ok "$out" "$stamp" && { log "tfproviders: cached"; return; }
  log "tfproviders: building terraform-provider-helm v$TF_HELM_PROVIDER_VERSION and terraform-provider-kubernetes v$TF_K8S_PROVIDER_VERSION (cold: 5-15 min)"
  rm -rf "$out.tmp"; mkdir -p "$out.tmp/bin"
  tfprovider_build "$out.tmp/bin" github.com/hashicorp/terraform-provider-helm "$TF_HELM_PROVIDER_VERSION"
  tfprovider_build "$out.tmp/bin" github.com/hashicorp/terraform-provider-kubernetes "$TF_K8S_PROVIDER_VERSION"
  local type ver dir
  for type in helm kubernetes; do
    ver="$TF_HELM_PROVIDER_VERSION"; [ "$type" = kubernetes ] && ver="$TF_K8S_PROVIDER_VERSION"
    dir="$out.tmp/mirror/registry.terraform.io/hashicorp/$type/$ver/linux_amd64"
    mkdir -p "$dir"
    cp "$out.tmp/bin/terraform-provider-$type" "$dir/terraform-provider-${type}_v$ver"
  done
  rm -rf "$out"; mv "$out.tmp" "$out"
  # Written after the move: the config names the final path.
  cat > "$out/terraformrc" <<EOF
# Terraform CLI config for offline use (scripts/build-k8s-bins.sh tfproviders): providers come
# only from the filesystem mirror beside this file, never from the network.
provider_installation {
  filesystem_mirror {
    path    = "$out/mirror"
    include = ["registry.terraform.io/hashicorp/helm", "registry.terraform.io/hashicorp/kubernetes"]
  }
  direct {
    exclude = ["registry.terraform.io/*/*"]
  }
}
disable_checkpoint = true
EOF
  echo "$stamp" > "$out/.stamp"
  log "tfproviders: built"
}

print_dir() {
  case "$1" in
    k8s) echo "$BIN_ROOT/k8s-v$K8S_VERSION" ;;
    etcd) echo "$BIN_ROOT/etcd-v$ETCD_VERSION" ;;
    kwok) echo "$BIN_ROOT/kwok-v$KWOK_VERSION" ;;
    helm) echo "$BIN_ROOT/helm-v$HELM_VERSION" ;;
    kubectl) echo "$BIN_ROOT/kubectl-v$K8S_VERSION" ;;
    registry) echo "$BIN_ROOT/registry-v$REGISTRY_VERSION" ;;
    gatewayapi) echo "$BIN_ROOT/gatewayapi-v$GATEWAY_API_VERSION" ;;
    tfproviders) echo "$BIN_ROOT/tfproviders-helm$TF_HELM_PROVIDER_VERSION-k8s$TF_K8S_PROVIDER_VERSION" ;;
    *) log "unknown component: $1"; exit 2 ;;
  esac
}

if [ "${1:-}" = "--print-dir" ]; then print_dir "${2:?component}"; exit 0; fi
need_go
[ $# -gt 0 ] || set -- all
mkdir -p "$BIN_ROOT"
exec 8>"$BIN_ROOT/.build.lock"
flock 8 || { log "cannot lock $BIN_ROOT/.build.lock"; exit 1; }
avail_kb="$(df -Pk "$BIN_ROOT" 2>/dev/null | awk 'NR==2{print $4}' || true)"
if [ "${avail_kb:-0}" -lt $((8 * 1024 * 1024)) ]; then
  log "warning: less than 8 GiB free for the Go build cache; a cold k8s build needs about 6-10 GiB"
fi
for what in "$@"; do
  case "$what" in
    all) build_etcd; build_kwok; build_helm; build_k8s; build_kubectl; build_registry; build_gatewayapi ;;
    k8s) build_k8s ;; etcd) build_etcd ;; kwok) build_kwok ;; helm) build_helm ;; kubectl) build_kubectl ;;
    registry) build_registry ;; gatewayapi) build_gatewayapi ;;
    tfproviders) build_tfproviders ;;
    *) log "unknown component: $what"; exit 2 ;;
  esac
done
