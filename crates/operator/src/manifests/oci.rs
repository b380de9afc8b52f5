//! `oci://` manifests: fetch from a registry, parse with [`wandb_manifest::artifact`], cache.
//!
//! Every load resolves the tag to a digest (one manifest HEAD), so a re-pushed tag is picked up
//! on the next reconcile (the official operator caches a tag forever). Parsed manifests are kept
//! by digest: an unchanged tag costs that one request and no blob download. When the registry
//! cannot be reached (connection error, timeout, 5xx) and the same `repository:tag` loaded
//! before in this process, the cached copy is used with a warning, so a registry blip does not
//! stall running instances. A 401/404 is not a blip and is reported. The fallback is kept per
//! credential set (see [`OciLoader::load`]).
//!
//! Clients (with their bearer tokens) are kept per registry and credential set, never shared
//! between credential sets: one namespace's pull secret never authorizes another's pull.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest as _, Sha256};
use wandb_manifest::artifact::{self, Artifact};
use wandb_manifest::{ManifestError, ServerManifest};

use super::docker_config::Credentials;

/// A whole load (digest, manifests, blobs) gives up after this long.
const LOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Manifest media types asked for (OCI and Docker, image and index).
const ACCEPT: &[&str] = &[
    manifest::OCI_IMAGE_MEDIA_TYPE,
    manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
    manifest::IMAGE_MANIFEST_MEDIA_TYPE,
    manifest::IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];

/// Fetches and caches `oci://` manifests; one per process (in the controller's Context).
#[derive(Default)]
pub struct OciLoader {
    /// `host:port` of registries spoken to over plain HTTP (`run --insecure-registries`).
    insecure: Vec<String>,
    clients: Mutex<HashMap<String, Arc<Client>>>,
    /// Parsed manifests by manifest digest (only digests some tag points at are kept).
    by_digest: Mutex<HashMap<String, Arc<ServerManifest>>>,
    /// `repository:tag` -> the digest it last resolved to.
    by_tag: Mutex<HashMap<String, String>>,
}

/// Why a fetch failed: `transient` failures may fall back to the cache.
struct Failure {
    error: ManifestError,
    transient: bool,
}

impl OciLoader {
    pub fn new(insecure_registries: Vec<String>) -> Self {
        OciLoader {
            insecure: insecure_registries,
            ..Default::default()
        }
    }

    /// The manifest of `repository:version` (repository without `oci://`).
    pub async fn load(
        &self,
        repository: &str,
        version: &str,
        creds: Option<&Credentials>,
    ) -> Result<Arc<ServerManifest>, ManifestError> {
        let name = format!("oci://{repository}:{version}");
        // Per credential set: a registry outage never hands one namespace's private manifest to
        // a resource that could not pull it itself.
        let tag_key = format!("{repository}:{version}\0{}", who(creds));
        let result =
            tokio::time::timeout(LOAD_TIMEOUT, self.fetch(&name, repository, version, creds))
                .await
                .unwrap_or_else(|_| {
                    Err(Failure {
                        error: registry_error(&name, format!("no answer within {LOAD_TIMEOUT:?}")),
                        transient: true,
                    })
                });
        match result {
            Ok((digest, m)) => {
                self.remember(tag_key, digest);
                Ok(m)
            }
            Err(f) if f.transient => match self.cached(&tag_key) {
                Some((digest, m)) => {
                    tracing::warn!(reference = %name, %digest, error = %f.error,
                        "registry unreachable; using the manifest loaded before");
                    Ok(m)
                }
                None => Err(f.error),
            },
            Err(f) => Err(f.error),
        }
    }

    async fn fetch(
        &self,
        name: &str,
        repository: &str,
        version: &str,
        creds: Option<&Credentials>,
    ) -> Result<(String, Arc<ServerManifest>), Failure> {
        let reference: Reference =
            format!("{repository}:{version}")
                .parse()
                .map_err(|e| Failure {
                    error: ManifestError::BadLocation {
                        location: name.to_owned(),
                        reason: format!("not an OCI reference: {e}"),
                    },
                    transient: false,
                })?;
        let auth = match creds {
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
            None => RegistryAuth::Anonymous,
        };
        let client = self.client(reference.resolve_registry(), creds);
        let failed = |e| fetch_failure(name, e);
        let digest = client
            .fetch_manifest_digest(&reference, &auth)
            .await
            .map_err(failed)?;
        if let Some(m) = self.by_digest.lock().expect("not poisoned").get(&digest) {
            return Ok((digest, m.clone()));
        }
        tracing::info!(reference = %name, %digest, "pulling the server manifest");
        let invalid = |message: String| Failure {
            error: ManifestError::Artifact {
                reference: name.to_owned(),
                message,
            },
            transient: false,
        };
        let mut target = reference.clone_with_digest(digest.clone());
        let mut layers = None;
        // An index points at a manifest; take its first (at most one hop: an index of indexes is
        // not a manifest artifact).
        for _ in 0..2 {
            let (bytes, _) = client
                .pull_manifest_raw(&target, &auth, ACCEPT)
                .await
                .map_err(failed)?;
            artifact::verify_digest(target.digest().unwrap_or_default(), &bytes)
                .map_err(|e| invalid(format!("manifest: {e}")))?;
            match artifact::parse_manifest(&bytes).map_err(&invalid)? {
                Artifact::Image(l) => {
                    layers = Some(l);
                    break;
                }
                Artifact::Index(first) => target = reference.clone_with_digest(first.digest),
            }
        }
        let layers =
            layers.ok_or_else(|| invalid("an index of indexes is not supported".into()))?;
        let mut blobs = Vec::with_capacity(layers.len());
        for layer in layers {
            // Blobs are read into memory: refuse what cannot be a manifest (e.g. an image layer).
            if u64::try_from(layer.size).unwrap_or(u64::MAX) > artifact::MAX_YAML_BYTES {
                return Err(invalid(format!(
                    "layer {} is {} bytes; a server manifest artifact is far smaller",
                    layer.digest, layer.size
                )));
            }
            let mut blob = Vec::new();
            client
                .pull_blob(&target, layer.digest.as_str(), &mut blob)
                .await
                .map_err(failed)?;
            artifact::verify_digest(&layer.digest, &blob)
                .map_err(|e| invalid(format!("layer {}: {e}", layer.digest)))?;
            blobs.push((layer, blob));
        }
        let docs = artifact::layer_documents(&blobs).map_err(&invalid)?;
        let parsed = ServerManifest::from_documents(&docs).map_err(|error| Failure {
            error,
            transient: false,
        })?;
        let parsed = Arc::new(parsed);
        self.by_digest
            .lock()
            .expect("not poisoned")
            .insert(digest.clone(), parsed.clone());
        Ok((digest, parsed))
    }

    /// The client for `registry` with these credentials (created on first use).
    fn client(&self, registry: &str, creds: Option<&Credentials>) -> Arc<Client> {
        let key = format!("{registry}\0{}", who(creds));
        let mut clients = self.clients.lock().expect("not poisoned");
        clients
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Client::new(ClientConfig {
                    protocol: ClientProtocol::HttpsExcept(self.insecure.clone()),
                    connect_timeout: Some(Duration::from_secs(10)),
                    read_timeout: Some(Duration::from_secs(30)),
                    ..Default::default()
                }))
            })
            .clone()
    }

    fn remember(&self, tag_key: String, digest: String) {
        let mut tags = self.by_tag.lock().expect("not poisoned");
        tags.insert(tag_key, digest);
        // Drop manifests no tag points at any more (a re-pushed tag's old content).
        self.by_digest
            .lock()
            .expect("not poisoned")
            .retain(|d, _| tags.values().any(|v| v == d));
    }

    fn cached(&self, tag_key: &str) -> Option<(String, Arc<ServerManifest>)> {
        let digest = self
            .by_tag
            .lock()
            .expect("not poisoned")
            .get(tag_key)?
            .clone();
        let m = self
            .by_digest
            .lock()
            .expect("not poisoned")
            .get(&digest)?
            .clone();
        Some((digest, m))
    }
}

/// A key for a credential set: a hash, so maps hold no password; empty when anonymous.
fn who(creds: Option<&Credentials>) -> String {
    creds.map_or_else(String::new, |c| {
        let h = Sha256::digest(format!("{}\0{}", c.username, c.password));
        h.iter().map(|b| format!("{b:02x}")).collect()
    })
}

fn registry_error(name: &str, message: String) -> ManifestError {
    ManifestError::Registry {
        reference: name.to_owned(),
        message,
    }
}

/// Maps a client error to a message naming the registry's answer (never credentials: the
/// client's errors carry URLs and response bodies only).
fn fetch_failure(name: &str, e: OciDistributionError) -> Failure {
    use OciDistributionError as E;
    let (message, transient) = match e {
        E::RegistryError { envelope, .. } => {
            let answers: Vec<String> = envelope
                .errors
                .iter()
                .map(|x| {
                    let code = serde_json::to_value(&x.code)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_else(|| format!("{:?}", x.code));
                    if x.message.is_empty() {
                        code
                    } else {
                        format!("{code} ({})", x.message)
                    }
                })
                .collect();
            (
                format!("the registry answered {}", answers.join(", ")),
                false,
            )
        }
        E::UnauthorizedError { .. } => (
            "the registry answered 401 Unauthorized: add a kubernetes.io/dockerconfigjson Secret \
             for this registry to spec.global.imagePullSecrets, or check its credentials"
                .into(),
            false,
        ),
        E::AuthenticationFailure(body) => (
            format!(
                "the registry's token service refused the credentials: {}",
                short(&body)
            ),
            false,
        ),
        E::ServerError { code, message, .. } => (
            format!("the registry answered HTTP {code}: {}", short(&message)),
            code >= 500 || code == 429,
        ),
        E::RequestError(e) => (format!("cannot reach the registry: {}", chain(&e)), true),
        // Content that does not match its digest is a bad artifact, not an unreachable one.
        E::DigestError(e) => {
            return Failure {
                error: ManifestError::Artifact {
                    reference: name.to_owned(),
                    message: format!("digest check failed: {e}"),
                },
                transient: false,
            };
        }
        other => (other.to_string(), false),
    };
    Failure {
        error: registry_error(name, message),
        transient,
    }
}

fn short(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 200 {
        format!("{}...", s.chars().take(200).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// An error with its sources (reqwest's own message hides the cause, e.g. "connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}
