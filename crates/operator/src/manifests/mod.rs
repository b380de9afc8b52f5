//! Loading server manifests from any location: `file://` and `builtin://` through the offline
//! [`ManifestLocation::load`], `oci://` through the registry client here. The operator owns
//! registry access because it needs the cluster (pull secrets) and process state (the cache);
//! `wandb-manifest` stays I/O-light and parses the artifact bytes.

pub mod docker_config;
pub mod oci;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use wandb_manifest::source::check_version;
use wandb_manifest::{ManifestError, ManifestLocation, ServerManifest};

pub use docker_config::Credentials;
pub use oci::OciLoader;

/// The Secret type and key of registry credentials.
const DOCKERCONFIGJSON: &str = "kubernetes.io/dockerconfigjson";
const DOCKERCONFIGJSON_KEY: &str = ".dockerconfigjson";

/// W&B's public registry, where the official operator pulls server manifests from.
pub const OFFICIAL_REGISTRY: &str = "us-docker.pkg.dev/wandb-production/public";

/// Where an instance's manifest comes from, as the official operator decides it:
/// `spec.wandb.manifestRepository`, else the operator's `--default-manifest-repository`, else
/// `oci://<spec.global.imageRegistry or us-docker.pkg.dev/wandb-production/public>/wandb/server-manifest`.
/// Returns the location and what chose it (for messages).
pub fn location_for(
    cr: &wandb_api::WeightsAndBiases,
    operator_default: Option<&str>,
) -> (String, &'static str) {
    if let Some(l) = &cr.spec.wandb.manifest_repository {
        return (l.clone(), "spec.wandb.manifestRepository");
    }
    if let Some(l) = operator_default {
        return (
            l.to_owned(),
            "the operator's --default-manifest-repository (spec.wandb.manifestRepository is unset)",
        );
    }
    let registry = cr
        .spec
        .global
        .as_ref()
        .and_then(|g| g.image_registry.as_deref())
        .unwrap_or(OFFICIAL_REGISTRY);
    (
        format!("oci://{registry}/wandb/server-manifest"),
        "the default manifest repository (spec.wandb.manifestRepository is unset; from spec.global.imageRegistry or W&B's registry)",
    )
}

/// Loads (parse and merge; no compatibility or validity check) the manifest of `version`.
/// The built-in manifest is parsed once per version and process: it cannot change, and parsing
/// it is most of what a settled reconcile would otherwise spend.
pub async fn load(
    loader: &OciLoader,
    location: &ManifestLocation,
    version: &str,
    creds: Option<&Credentials>,
) -> Result<Arc<ServerManifest>, ManifestError> {
    check_version(version)?;
    match location {
        ManifestLocation::Oci(repository) => loader.load(repository, version, creds).await,
        ManifestLocation::Builtin => builtin(version),
        other => other.load(version).map(Arc::new),
    }
}

fn builtin(version: &str) -> Result<Arc<ServerManifest>, ManifestError> {
    static PARSED: OnceLock<Mutex<HashMap<String, Arc<ServerManifest>>>> = OnceLock::new();
    let parsed = PARSED.get_or_init(Default::default);
    if let Some(m) = parsed.lock().expect("not poisoned").get(version) {
        return Ok(m.clone());
    }
    let m = Arc::new(ManifestLocation::Builtin.load(version)?);
    parsed
        .lock()
        .expect("not poisoned")
        .insert(version.to_owned(), m.clone());
    Ok(m)
}

/// Manifests that passed the compatibility and validity checks, by where they came from: a
/// loaded manifest that is the very one checked before (same `Arc`, as the built-in and
/// `oci://` caches hand out) is not checked again.
#[derive(Default)]
pub struct CheckedManifests {
    passed: Mutex<HashMap<String, Arc<ServerManifest>>>,
}

impl CheckedManifests {
    /// Checks `manifest` (loaded from `key`) unless this very manifest passed before.
    pub fn check(&self, key: &str, manifest: &Arc<ServerManifest>) -> Result<(), ManifestError> {
        if let Some(passed) = self.passed.lock().expect("not poisoned").get(key)
            && Arc::ptr_eq(passed, manifest)
        {
            return Ok(());
        }
        manifest.check_compatible()?;
        manifest.ensure_valid()?;
        self.passed
            .lock()
            .expect("not poisoned")
            .insert(key.to_owned(), manifest.clone());
        Ok(())
    }
}

/// The registry host (`host[:port]`) of an OCI repository (`docker.io` when it names none).
pub fn registry_host(repository: &str) -> String {
    let first = repository.split('/').next().unwrap_or_default();
    let is_host = repository.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost");
    if is_host {
        docker_config::canonical_host(first)
    } else {
        "docker.io".into()
    }
}

/// Credentials for `registry` from the first of `secrets` (dockerconfigjson Secrets in
/// `namespace`, in order) that has an entry for it. A missing Secret or one of another type is
/// skipped (as the kubelet does for pods); a malformed one is an error naming it.
pub async fn pull_credentials(
    client: &kube::Client,
    namespace: &str,
    secrets: &[String],
    registry: &str,
) -> Result<Option<Credentials>, ManifestError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for name in secrets {
        let secret = api
            .get_opt(name)
            .await
            .map_err(|e| ManifestError::Registry {
                reference: registry.to_owned(),
                message: format!("reading imagePullSecret {namespace}/{name}: {e}"),
            })?;
        let Some(secret) = secret else {
            tracing::debug!(%namespace, secret = %name, "imagePullSecret not found; skipped");
            continue;
        };
        if secret.type_.as_deref() != Some(DOCKERCONFIGJSON) {
            continue;
        }
        let Some(data) = secret
            .data
            .as_ref()
            .and_then(|d| d.get(DOCKERCONFIGJSON_KEY))
        else {
            continue;
        };
        let found = docker_config::credentials_for(&data.0, registry).map_err(|e| {
            ManifestError::Registry {
                reference: registry.to_owned(),
                message: format!("imagePullSecret {namespace}/{name}: {e}"),
            }
        })?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_is_the_first_segment_when_it_looks_like_a_host() {
        assert_eq!(
            registry_host("us-docker.pkg.dev/wandb-production/public/wandb/server-manifest"),
            "us-docker.pkg.dev"
        );
        assert_eq!(registry_host("127.0.0.1:5000/wandb/m"), "127.0.0.1:5000");
        assert_eq!(registry_host("localhost/m"), "localhost");
        assert_eq!(registry_host("wandb/server-manifest"), "docker.io");
        assert_eq!(registry_host("index.docker.io/wandb/m"), "docker.io");
    }
}
