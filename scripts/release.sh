#!/usr/bin/env bash
# Produces every release artifact of VERSION into one folder, and optionally pushes them:
#
#   scripts/release.sh VERSION [--out DIR] [--push REGISTRY [--plain-http]]
#                      [--image-repository REPO] [--source-url URL] [--arch amd64[,arm64]]
#
# DIR (default dist/release-VERSION) receives:
#   wandb-operator-VERSION-oci.tar      the image as an OCI image layout (tar; tag VERSION)
#   wandb-operator-VERSION.tgz          the chart (`helm package`): version and appVersion VERSION,
#                                       values image.repository REPO, image.tag VERSION and
#                                       image.digest pinned, Artifact Hub `images` and `changes`
#   wandb-operator-VERSION-crds.yaml    the CRD (kubectl apply [--server-side] -f)
#   wandb-operator-VERSION-sbom.cdx.json  CycloneDX SBOM of the crates in the binary
#   RELEASE_NOTES.md                    the CHANGELOG section of VERSION (or "Unreleased")
#   SHA256SUMS                          sha256sum of every file above
#
# REPO defaults to REGISTRY/wandb-operator with --push, else the chart's own default.
# --push REGISTRY (host[:port][/path]) pushes the image (skopeo) to REPO:VERSION and the chart as
# an OCI artifact to oci://REGISTRY/charts/wandb-operator:VERSION (helm push), then checks that
# the registry serves the image under the digest pinned in the chart. --plain-http for a registry
# without TLS (a local test registry). Registry credentials: skopeo's and helm's own logins.
# VERSION must be the workspace version (Cargo.toml), which the binary reports.
set -euo pipefail
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_DIR"

say() { printf '[release] %s\n' "$*" >&2; }
die() { printf '[release] FAILED: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

VERSION="${1:-}"; [ -n "$VERSION" ] || usage; shift
[[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || die "VERSION must be semver (x.y.z[-pre]): $VERSION"
OUT="" PUSH="" PLAIN_HTTP="" IMAGE_REPO="" SOURCE_URL="" ARCHES=amd64
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --push) PUSH="${2%/}"; shift 2 ;;
    --plain-http) PLAIN_HTTP=1; shift ;;
    --image-repository) IMAGE_REPO="$2"; shift 2 ;;
    --source-url) SOURCE_URL="$2"; shift 2 ;;
    --arch) ARCHES="$2"; shift 2 ;;
    *) usage ;;
  esac
done
CARGO_VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"
[ "$VERSION" = "$CARGO_VERSION" ] || die "VERSION $VERSION is not the workspace version $CARGO_VERSION (Cargo.toml)"
[ -n "$OUT" ] || OUT="dist/release-$VERSION"
CHART=charts/wandb-operator
if [ -z "$IMAGE_REPO" ]; then
  if [ -n "$PUSH" ]; then IMAGE_REPO="$PUSH/wandb-operator"
  else IMAGE_REPO="$(sed -n 's/^  repository: //p' "$CHART/values.yaml" | head -1)"; fi
fi
HELM="${HELM:-$(command -v helm || echo "$(scripts/build-k8s-bins.sh --print-dir helm)/helm")}"
[ -x "$HELM" ] || die "no helm (scripts/build-k8s-bins.sh helm, or HELM=...)"
if [ -n "$PUSH" ] && ! command -v skopeo >/dev/null; then
  [ "$(id -u)" = 0 ] || die "--push needs skopeo (apt-get install skopeo)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends skopeo >/dev/null
fi

rm -rf "$OUT"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"

# --- image ---------------------------------------------------------------------------------
scripts/build-image.sh --out "$WORK/image" --tag "$VERSION" --arch "$ARCHES" >/dev/null
DIGEST="$(cat "$WORK/image/digest")"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
  -C "$WORK/image/oci" -cf "$OUT/wandb-operator-$VERSION-oci.tar" .
cp "$WORK/image/sbom.cdx.json" "$OUT/wandb-operator-$VERSION-sbom.cdx.json"

# --- CRD -----------------------------------------------------------------------------------
cp deploy/crds/apps.wandb.com_weightsandbiases.yaml "$OUT/wandb-operator-$VERSION-crds.yaml"

# --- release notes: the CHANGELOG section `## VERSION` (or `## [VERSION]`), else Unreleased ---
notes_section() { # HEADING-REGEX
  awk -v re="$1" '$0 ~ "^## " { if (on) exit; if ($0 ~ re) { on = 1; next } } on' CHANGELOG.md
}
v_re="${VERSION//./\\.}"
NOTES="$(notes_section "^## \\[?$v_re\\]?( |$)")"
[ -n "$NOTES" ] || NOTES="$(notes_section '^## Unreleased')"
[ -n "$(tr -d '[:space:]' <<<"$NOTES")" ] || die "CHANGELOG.md has no section for $VERSION nor Unreleased"
{ echo "# wandb-operator $VERSION"; echo; echo "Image: \`$IMAGE_REPO:$VERSION@$DIGEST\` ($ARCHES)"; echo;
  sed '/./,$!d' <<<"$NOTES"; } >"$OUT/RELEASE_NOTES.md"

# --- chart ---------------------------------------------------------------------------------
cp -r "$CHART" "$WORK/chart"
rm -rf "$WORK/chart/tests"
printf '%s\n' "$NOTES" >"$WORK/notes.md"
python3 - "$WORK/chart" "$VERSION" "$IMAGE_REPO" "$DIGEST" "$SOURCE_URL" "$ARCHES" "$WORK/notes.md" <<'PY'
import re, sys
chart, version, repo, digest, source, arches, notes_path = sys.argv[1:]
notes = open(notes_path).read()

def sub(path, pattern, repl):
    text = open(path).read()
    new, n = re.subn(pattern, repl, text, count=1, flags=re.M)
    if n != 1:
        sys.exit(f"release.sh: {pattern!r} not found in {path}")
    open(path, "w").write(new)

values = f"{chart}/values.yaml"
sub(values, r'^(  repository: ).*$', rf'\g<1>{repo}')
sub(values, r'^(  tag: )"".*$', rf'\g<1>"{version}"')
sub(values, r'^(  digest: )"".*$', rf'\g<1>"{digest}"')

# Artifact Hub `changes`: the first sentence of each top-level bullet of the notes, at most
# 160 characters.
changes = []
for item in re.split(r'^- ', notes, flags=re.M)[1:]:
    first = re.split(r'(?<=\.)\s', " ".join(item.split()))[0].rstrip('.')
    if len(first) > 160:
        first = first[:159].rstrip() + "…"
    changes.append(first.replace('\\', '').replace('"', "'"))
chart_yaml = f"{chart}/Chart.yaml"
block = "".join(f'    - kind: added\n      description: "{c}"\n' for c in changes) or \
    '    - kind: changed\n      description: "See RELEASE_NOTES.md"\n'
sub(chart_yaml, r'^  artifacthub\.io/changes: \|\n(?:    .*\n)+', f"  artifacthub.io/changes: |\n{block}")
platforms = "".join(f"        - linux/{a}\n" for a in arches.split(","))
sub(chart_yaml, r'^      image: .*\n      platforms:\n(?:        - .*\n)+',
    f"      image: {repo}:{version}@{digest}\n      platforms:\n{platforms}")
sub(chart_yaml, r'^  artifacthub\.io/prerelease: .*$',
    f'  artifacthub.io/prerelease: "{str("-" in version).lower()}"')
if source:
    sub(chart_yaml, r'^sources:\n  - .*$', f"sources:\n  - {source}")
PY
"$HELM" lint --strict "$WORK/chart" >/dev/null || die "helm lint --strict of the release chart failed"
"$HELM" package "$WORK/chart" --version "$VERSION" --app-version "$VERSION" -d "$WORK" >/dev/null
mv "$WORK/wandb-operator-$VERSION.tgz" "$OUT/"

(cd "$OUT" && sha256sum -- * | grep -v ' SHA256SUMS$' >SHA256SUMS)
say "artifacts in $OUT (image $IMAGE_REPO:$VERSION@$DIGEST):"
(cd "$OUT" && ls -l >&2)

# --- push ----------------------------------------------------------------------------------
if [ -n "$PUSH" ]; then
  tls=(); [ -z "$PLAIN_HTTP" ] || tls=(--dest-tls-verify=false)
  say "pushing the image to $IMAGE_REPO:$VERSION"
  skopeo copy -q --preserve-digests "${tls[@]}" "oci:$WORK/image/oci:$VERSION" "docker://$IMAGE_REPO:$VERSION"
  itls=(); [ -z "$PLAIN_HTTP" ] || itls=(--tls-verify=false)
  served="$(skopeo inspect --raw "${itls[@]}" "docker://$IMAGE_REPO:$VERSION" | sha256sum | cut -d' ' -f1)"
  [ "sha256:$served" = "$DIGEST" ] || die "the registry serves $IMAGE_REPO:$VERSION as sha256:$served, not $DIGEST"
  say "pushing the chart to oci://$PUSH/charts"
  hp=(); [ -z "$PLAIN_HTTP" ] || hp=(--plain-http)
  "$HELM" push "${hp[@]}" "$OUT/wandb-operator-$VERSION.tgz" "oci://$PUSH/charts" >&2
fi
echo "$OUT"
