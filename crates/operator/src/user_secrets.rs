//! Reads of the user's Secrets during one reconcile: each Secret is fetched at most once per
//! pass, whoever needs it (connection Secrets, the email sink, the inputs hash). Values stay in
//! memory for the pass only and are never logged.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use crate::secret_versions::{SecretVersions, Seen};

/// The values of a Secret by key (`data` decoded as UTF-8, lossily, and `stringData`).
pub type SecretValues = BTreeMap<String, String>;

/// The values of `s` by key.
pub fn values(s: Secret) -> SecretValues {
    let mut m: SecretValues = s
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    m.extend(s.string_data.unwrap_or_default());
    m
}

/// A per-reconcile cache of Secret reads in one namespace, in front of the controller's
/// [`SecretVersions`] (what the watch says exists, and the values last read by version).
pub struct SecretReader {
    api: Api<Secret>,
    namespace: String,
    versions: SecretVersions,
    cache: BTreeMap<String, Option<SecretValues>>,
}

impl SecretReader {
    /// A reader that always asks the API server (outside the controller).
    pub fn new(client: &kube::Client, namespace: &str) -> Self {
        Self::with_versions(client, namespace, SecretVersions::default())
    }

    pub fn with_versions(client: &kube::Client, namespace: &str, versions: SecretVersions) -> Self {
        SecretReader {
            api: Api::namespaced(client.clone(), namespace),
            namespace: namespace.to_string(),
            versions,
            cache: BTreeMap::new(),
        }
    }

    /// The values of Secret `name`, `None` when it does not exist.
    pub async fn read(&mut self, name: &str) -> Result<Option<SecretValues>, kube::Error> {
        if let Some(hit) = self.cache.get(name) {
            return Ok(hit.clone());
        }
        let value = match self.versions.seen(&self.namespace, name) {
            Seen::Absent => None,
            Seen::At(rv) => match self.versions.values_at(&self.namespace, name, &rv) {
                Some(v) => Some(v),
                None => self.fetch(name).await?,
            },
            Seen::Unknown => self.fetch(name).await?,
        };
        self.cache.insert(name.to_string(), value.clone());
        Ok(value)
    }

    async fn fetch(&self, name: &str) -> Result<Option<SecretValues>, kube::Error> {
        let secret = self.api.get_opt(name).await?;
        let read = secret.map(|s| {
            let rv = s.metadata.resource_version.clone().unwrap_or_default();
            (rv, values(s))
        });
        self.versions.remember(&self.namespace, name, read.clone());
        Ok(read.map(|(_, v)| v))
    }

    /// Reads the key of each of `selectors` (`(input field, selector)`), set with `set`. A missing
    /// Secret or key that is not optional is described (names only, never values) and returned.
    pub async fn read_selectors(
        &mut self,
        path: &str,
        selectors: &[(&str, k8s_openapi::api::core::v1::SecretKeySelector)],
        mut set: impl FnMut(&str, &str),
    ) -> Result<Vec<String>, kube::Error> {
        let mut missing = Vec::new();
        for (field, sel) in selectors {
            let optional = sel.optional == Some(true);
            match self.read(&sel.name).await? {
                None if optional => {}
                None => missing.push(format!(
                    "Secret {} not found (for {path} {field})",
                    sel.name
                )),
                Some(data) => match data.get(&sel.key) {
                    Some(v) => set(field, v),
                    None if optional => {}
                    None => missing.push(format!(
                        "Secret {} has no key {} (for {path} {field})",
                        sel.name, sel.key
                    )),
                },
            }
        }
        Ok(missing)
    }
}
