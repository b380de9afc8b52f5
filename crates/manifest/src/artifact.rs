//! OCI artifacts holding a server manifest: the pure half of `oci://` (no network).
//!
//! The operator's fetcher downloads an image manifest (or an index, of which the first manifest
//! is taken) and its layers; this module turns those bytes into the `(file name, text)`
//! documents that [`crate::ServerManifest::from_documents`] merges in sorted name order. A layer
//! may be a tar, a gzip-compressed tar, or (ORAS style) a plain YAML file named by its
//! `org.opencontainers.image.title` annotation. Files that are not `*.yaml`/`*.yml` are ignored;
//! an artifact with no YAML at all is an error. Blob digests are verified here too, so the check
//! does not depend on the HTTP client.

use std::collections::BTreeMap;
use std::io::Read;

use serde::Deserialize;
use sha2::{Digest as _, Sha256, Sha512};

/// The annotation naming a file in ORAS-style artifacts.
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";

/// Upper bound of the YAML read from one artifact after decompression; manifests are a few
/// hundred KiB, so anything near this is a wrong artifact (or a decompression bomb).
pub const MAX_YAML_BYTES: u64 = 64 * 1024 * 1024;

/// A content descriptor (the parts this crate uses).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// What a manifest reference resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Artifact {
    /// An image manifest: its layers, in order.
    Image(Vec<Descriptor>),
    /// An image index (or Docker manifest list): the manifest to fetch next (the first one).
    Index(Descriptor),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    #[serde(default)]
    media_type: String,
    manifests: Option<Vec<Descriptor>>,
    layers: Option<Vec<Descriptor>>,
}

/// Parses a manifest document (image manifest, index or manifest list).
pub fn parse_manifest(bytes: &[u8]) -> Result<Artifact, String> {
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|e| format!("not an OCI manifest: {e}"))?;
    let is_index = raw.media_type.contains("index") || raw.media_type.contains("manifest.list");
    match (raw.manifests, raw.layers) {
        (Some(m), _) if is_index || raw.media_type.is_empty() => m
            .into_iter()
            .next()
            .map(Artifact::Index)
            .ok_or_else(|| "the image index lists no manifests".to_string()),
        (_, Some(layers)) => Ok(Artifact::Image(layers)),
        _ => Err(format!(
            "manifest of media type {:?} has neither layers nor manifests",
            raw.media_type
        )),
    }
}

/// Checks `bytes` against a `sha256:`/`sha512:` digest.
pub fn verify_digest(expected: &str, bytes: &[u8]) -> Result<(), String> {
    let (algorithm, hex) = expected
        .split_once(':')
        .ok_or_else(|| format!("digest {expected:?} has no algorithm"))?;
    let actual = match algorithm {
        "sha256" => to_hex(&Sha256::digest(bytes)),
        "sha512" => to_hex(&Sha512::digest(bytes)),
        other => return Err(format!("digest algorithm {other:?} is not supported")),
    };
    if actual != hex.to_ascii_lowercase() {
        return Err(format!(
            "digest mismatch: expected {expected}, content is {algorithm}:{actual}"
        ));
    }
    Ok(())
}

/// The `sha256:` digest of `bytes` (for pushing in tests and for caching).
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", to_hex(&Sha256::digest(bytes)))
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The YAML documents of an artifact's layers (`(descriptor, blob)` in layer order), named by
/// their path in the tar or their title annotation. Errors when there is none.
pub fn layer_documents(layers: &[(Descriptor, Vec<u8>)]) -> Result<Vec<(String, String)>, String> {
    let mut docs = Vec::new();
    let mut budget = MAX_YAML_BYTES;
    for (i, (desc, blob)) in layers.iter().enumerate() {
        let title = desc.annotations.get(TITLE_ANNOTATION).map(String::as_str);
        let what = title.map_or_else(|| format!("layer {i} ({})", desc.digest), str::to_owned);
        let gz = blob.starts_with(&[0x1f, 0x8b]);
        let data = if gz {
            gunzip(blob, budget).map_err(|e| format!("{what}: {e}"))?
        } else {
            blob.clone()
        };
        if is_tar(&data) {
            docs.extend(tar_documents(&data, &mut budget).map_err(|e| format!("{what}: {e}"))?);
            continue;
        }
        // A plain file: its name comes from the title (without a `.gz` of a compressed one).
        let name = title.map(|t| if gz { t.trim_end_matches(".gz") } else { t });
        let Some(name) = name.filter(|n| is_yaml(n)) else {
            continue;
        };
        budget = budget
            .checked_sub(data.len() as u64)
            .ok_or_else(|| format!("more than {MAX_YAML_BYTES} bytes of YAML"))?;
        let text = String::from_utf8(data).map_err(|_| format!("{name} is not UTF-8 text"))?;
        docs.push((clean_path(name), text));
    }
    if docs.is_empty() {
        return Err(format!(
            "the artifact holds no *.yaml or *.yml file ({} layer(s) scanned: tar, tar.gz or \
             YAML files named by the {TITLE_ANNOTATION} annotation)",
            layers.len()
        ));
    }
    // Stable: a file repeated in a later layer stays after the earlier one and wins the merge.
    docs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(docs)
}

fn gunzip(blob: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(blob)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("bad gzip data: {e}"))?;
    if out.len() as u64 > limit {
        return Err(format!(
            "more than {MAX_YAML_BYTES} bytes after decompression"
        ));
    }
    Ok(out)
}

/// A POSIX/GNU tar has `ustar` at offset 257 of its first header.
fn is_tar(data: &[u8]) -> bool {
    data.len() >= 512 && &data[257..262] == b"ustar"
}

fn tar_documents(data: &[u8], budget: &mut u64) -> Result<Vec<(String, String)>, String> {
    let mut docs = Vec::new();
    let mut archive = tar::Archive::new(data);
    for entry in archive.entries().map_err(|e| format!("bad tar: {e}"))? {
        let mut entry = entry.map_err(|e| format!("bad tar entry: {e}"))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| format!("bad tar path: {e}"))?
            .to_string_lossy()
            .into_owned();
        if !is_yaml(&path) {
            continue;
        }
        *budget = budget
            .checked_sub(entry.size())
            .ok_or_else(|| format!("more than {MAX_YAML_BYTES} bytes of YAML"))?;
        let mut text = String::new();
        entry
            .read_to_string(&mut text)
            .map_err(|e| format!("{path}: {e}"))?;
        docs.push((clean_path(&path), text));
    }
    Ok(docs)
}

/// `*.yaml`/`*.yml`, not macOS `._` metadata files that tar tools sometimes add.
fn is_yaml(path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    !base.starts_with("._") && (base.ends_with(".yaml") || base.ends_with(".yml"))
}

fn clean_path(path: &str) -> String {
    path.trim_start_matches("./").to_owned()
}

#[cfg(test)]
#[path = "artifact_tests.rs"]
mod tests;
