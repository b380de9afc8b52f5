#!/usr/bin/env bash
# Builds the operator image without a container engine, as an OCI image layout:
#
#   scripts/build-image.sh [--out DIR] [--tag TAG] [--arch amd64[,arm64]]
#
# The image: the static (musl) `wandb-operator` binary as /wandb-operator, Debian's CA bundle at
# /etc/ssl/certs/ca-certificates.crt, /etc/passwd and /etc/group with root and `nonroot`
# (65532:65532), an empty /tmp (1777). No shell, no package manager. User 65532:65532,
# entrypoint ["/wandb-operator"], cmd ["run"] (as the Dockerfile's distroless image).
#
# Output in DIR (default dist/image):
#   oci/            the OCI image layout, the image tagged TAG (default: the workspace version)
#   digest          the image's manifest digest (sha256:...), what a registry serves it as
#   sbom.cdx.json   CycloneDX SBOM of the crates compiled into the binary
#   wandb-operator  the binary itself
#
# Reproducible: every timestamp (file mtimes, config and history `created`) is SOURCE_DATE_EPOCH
# (default: the commit time of HEAD), owners are 0:0 whoever builds, so building one commit twice
# gives the same digest (and the same SBOM).
#
# The SBOM lists what cargo's own feature resolver links for the musl target (`cargo tree -e
# normal`, proc-macros left out: they run at compile time only), with licenses and repositories
# from the crates' metadata. (cargo-cyclonedx 0.5.9 was tried: it reads `cargo metadata`, whose
# workspace-wide resolve lists crates that are not in the binary, e.g. ring and quinn.)
#
# Tools (installed when missing and running as root, as in CI): rustup's
# x86_64-unknown-linux-musl target, Debian's musl-tools (aws-lc-sys and mimalloc are C), umoci (OCI layout),
# ca-certificates.
# The musl release build uses its own target dir, $WANDB_OP_CACHE/target-musl (override with
# WANDB_IMAGE_TARGET_DIR), so it does not evict the debug build of the tests.
#
# Architectures: amd64 always. arm64 only with --arch amd64,arm64 and an aarch64 musl C cross
# compiler on PATH (aarch64-linux-musl-gcc; Debian packages none, so CI builds amd64 only; this
# path is untested); each architecture is then its own tag TAG-<arch> in the layout, TAG is the
# amd64 one, and no multi-platform index is made.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

OUT="$REPO/dist/image"
TAG=""
ARCHES="amd64"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --tag) TAG="$2"; shift 2 ;;
    --arch) ARCHES="$2"; shift 2 ;;
    *) echo "usage: $0 [--out DIR] [--tag TAG] [--arch amd64[,arm64]]" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

say() { printf '[build-image] %s\n' "$*" >&2; }
die() { printf '[build-image] FAILED: %s\n' "$*" >&2; exit 1; }

WANDB_OP_CACHE="${WANDB_OP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wandb-operator}"
TARGET_DIR="${WANDB_IMAGE_TARGET_DIR:-$WANDB_OP_CACHE/target-musl}"
VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"
[ -n "$TAG" ] || TAG="$VERSION"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
CREATED="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)"

# --- tools ---------------------------------------------------------------------------------
debs=()
command -v umoci >/dev/null || debs+=(umoci)
command -v musl-gcc >/dev/null || debs+=(musl-tools)
[ -e /etc/ssl/certs/ca-certificates.crt ] || debs+=(ca-certificates)
if [ ${#debs[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing Debian packages: ${debs[*]} (apt-get install ${debs[*]})"
  say "installing ${debs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null; }
fi
rust_target() { case "$1" in amd64) echo x86_64-unknown-linux-musl ;; arm64) echo aarch64-unknown-linux-musl ;; *) die "unknown arch $1" ;; esac; }

# --- the binary ----------------------------------------------------------------------------
build_binary() { # ARCH -> prints the binary's path
  local arch="$1" target
  target="$(rust_target "$arch")"
  rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target" >&2
  local env=()
  if [ "$arch" = arm64 ]; then
    command -v aarch64-linux-musl-gcc >/dev/null \
      || die "arm64 needs an aarch64 musl C cross compiler (aarch64-linux-musl-gcc) on PATH"
    env=(CC_aarch64_unknown_linux_musl=aarch64-linux-musl-gcc
      CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-musl-gcc)
  fi
  local start=$SECONDS
  # Symbols stripped (not needed to run). Paths of workspace crates are relative and
  # dependencies' are under CARGO_HOME, so the binary does not depend on the clone.
  # SOURCE_DATE_EPOCH is kept from cargo: build scripts (aws-lc-sys, psm) rerun when it changes,
  # and the commit time changes with every commit (a rebuild of minutes, for the same binary).
  env -u SOURCE_DATE_EPOCH "${env[@]}" CARGO_TARGET_DIR="$TARGET_DIR" CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --locked --release --target "$target" -p wandb-operator >&2
  say "cargo build --release --target $target: $((SECONDS - start)) s"
  echo "$TARGET_DIR/$target/release/wandb-operator"
}

# --- the root filesystem -------------------------------------------------------------------
fill_rootfs() { # ROOTFS BINARY
  local root="$1" bin="$2"
  install -d -m 0755 "$root/etc/ssl/certs"
  install -d -m 1777 "$root/tmp"
  install -m 0755 "$bin" "$root/wandb-operator"
  install -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' >"$root/etc/group"
  chmod 0644 "$root/etc/passwd" "$root/etc/group"
  find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
}

# --- the image -----------------------------------------------------------------------------
LAYOUT="$OUT/oci"
rm -rf "$LAYOUT"
umoci init --layout "$LAYOUT"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

IFS=, read -r -a arch_list <<<"$ARCHES"
[ "${arch_list[0]}" = amd64 ] || die "--arch must start with amd64"
for arch in "${arch_list[@]}"; do
  bin="$(build_binary "$arch")"
  tag="$TAG"
  [ ${#arch_list[@]} -eq 1 ] || tag="$TAG-$arch"
  [ "$arch" = amd64 ] && cp "$bin" "$OUT/wandb-operator"
  umoci new --image "$LAYOUT:$tag"
  # --rootless: ownership is recorded as 0:0 whoever runs this (root in CI, a user elsewhere);
  # repack takes the mapping from the bundle.
  umoci unpack --rootless --image "$LAYOUT:$tag" "$WORK/bundle-$arch" >/dev/null
  fill_rootfs "$WORK/bundle-$arch/rootfs" "$bin"
  umoci repack --image "$LAYOUT:$tag" \
    --history.created "$CREATED" --history.created_by "scripts/build-image.sh" \
    --history.comment "wandb-operator $VERSION ($REVISION)" "$WORK/bundle-$arch"
  umoci config --image "$LAYOUT:$tag" --no-history \
    --created "$CREATED" --author "wandb-operator" --os linux --architecture "$arch" \
    --config.user 65532:65532 --config.workingdir / \
    --config.entrypoint /wandb-operator --config.cmd run \
    --config.label "org.opencontainers.image.title=wandb-operator" \
    --config.label "org.opencontainers.image.version=$VERSION" \
    --config.label "org.opencontainers.image.revision=$REVISION" \
    --config.label "org.opencontainers.image.licenses=Apache-2.0" \
    --config.label "org.opencontainers.image.source=https://github.com/wandb/wandb-operator"
done
# TAG is the amd64 image (no multi-platform index is built: umoci makes none).
[ ${#arch_list[@]} -eq 1 ] || umoci tag --image "$LAYOUT:$TAG-amd64" "$TAG"
umoci gc --layout "$LAYOUT"

# The manifest digest of TAG, as a registry will serve it (skopeo copies manifests unchanged).
python3 - "$LAYOUT" "$TAG" >"$OUT/digest" <<'PY'
import json, sys
index = json.load(open(f"{sys.argv[1]}/index.json"))
for m in index["manifests"]:
    if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == sys.argv[2]:
        print(m["digest"])
        break
else:
    sys.exit(f"no manifest tagged {sys.argv[2]}")
PY

# The SBOM (CycloneDX 1.5 JSON) of the crates compiled into the amd64 binary.
cargo tree -q --locked -e normal --target x86_64-unknown-linux-musl -p wandb-operator \
  --prefix depth -f '{p}|{l}|{r}' >"$WORK/tree.txt"
python3 - "$WORK/tree.txt" "$VERSION" "$CREATED" "$(cat "$OUT/digest")" >"$OUT/sbom.cdx.json" <<'PY'
import json, sys, uuid
tree, version, created, digest = sys.argv[1:]
components = {}
skip_below = None  # depth of a proc-macro: it and everything under it only runs in rustc
for line in open(tree):
    line = line.rstrip("\n").removesuffix(" (*)")
    if "|" not in line:
        continue
    digits = len(line) - len(line.lstrip("0123456789"))
    depth, line = int(line[:digits]), line[digits:]
    if skip_below is not None and depth > skip_below:
        continue
    skip_below = None
    pkg, lic, repo = (line.split("|") + ["", ""])[:3]
    if pkg.endswith("(proc-macro)"):
        skip_below = depth
        continue
    name, ver = pkg.split(" ")[:2]
    ver = ver.removeprefix("v")
    if name == "wandb-operator" or " (/" in pkg:  # the workspace's own crates
        continue
    c = {"type": "library", "bom-ref": f"pkg:cargo/{name}@{ver}", "name": name, "version": ver,
         "purl": f"pkg:cargo/{name}@{ver}"}
    if lic:
        c["licenses"] = [{"expression": lic.replace("/", " OR ")}]
    if repo:
        c["externalReferences"] = [{"type": "vcs", "url": repo}]
    components[c["bom-ref"]] = c
bom = {
    "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
    # Derived from the image digest, so a rebuild gives the same document.
    "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'wandb-operator-image:' + digest)}",
    "metadata": {
        "timestamp": created,
        "tools": {"components": [{"type": "application", "name": "cargo tree (scripts/build-image.sh)"}]},
        "component": {"type": "container", "name": "wandb-operator", "version": version,
                      "bom-ref": f"wandb-operator@{digest}",
                      "hashes": [{"alg": "SHA-256", "content": digest.removeprefix("sha256:")}]},
    },
    "components": sorted(components.values(), key=lambda c: c["bom-ref"]),
}
json.dump(bom, sys.stdout, indent=2, sort_keys=True)
print()
PY

say "image $LAYOUT:$TAG ($ARCHES) $(cat "$OUT/digest"), $(du -sk "$LAYOUT/blobs" | cut -f1) KiB of blobs"
echo "$OUT"
