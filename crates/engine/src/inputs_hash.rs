//! A hash of the Secret data each pod template reads, stamped on the template as
//! [`INPUTS_HASH_ANNOTATION`], so that a rotated password or a moved endpoint rolls exactly the
//! workloads that read it and no others. Pure: the controller passes digests of the Secret values
//! it composed or read in this pass (never the values); `render`, which has none, stamps nothing.
//!
//! Granularity is the Secret key: a template reading `url` of a connection Secret rolls when
//! `url` changes, not when an unrelated key of the same Secret does. A whole-Secret read
//! (`envFrom`, a secret volume, a projected secret) depends on every key. A Secret the digests do
//! not know (e.g. one this pass did not read) does not contribute, so the same inputs always give
//! the same hash and a settled pass changes nothing.
//!
//! Deployments and StatefulSets are stamped. Jobs are not: a Job's template is immutable and an
//! existing Job is never re-applied, so a hash on it could never roll anything (a migration Job
//! runs once per version and reads whatever is current when it is created).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde::Deserialize as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::desired::DesiredObject;

/// The pod template annotation holding the hash of the Secret data the pods read.
pub const INPUTS_HASH_ANNOTATION: &str = "apps.wandb.com/inputs-hash";

/// Kinds whose pod template is stamped.
const STAMPED_KINDS: [&str; 2] = ["Deployment", "StatefulSet"];

/// Digests of Secret values known to the controller: Secret name -> key -> digest of the value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretDigests(BTreeMap<String, BTreeMap<String, String>>);

impl SecretDigests {
    /// Records every key of Secret `name` (replacing what was known of it).
    pub fn insert<K, V>(&mut self, name: &str, data: impl IntoIterator<Item = (K, V)>)
    where
        K: Into<String>,
        V: AsRef<[u8]>,
    {
        let keys = data
            .into_iter()
            .map(|(k, v)| (k.into(), digest(v.as_ref())))
            .collect();
        self.0.insert(name.to_string(), keys);
    }

    /// Adds every Secret of `other`.
    pub fn extend(&mut self, other: SecretDigests) {
        self.0.extend(other.0);
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// SHA-256 of `value`, hex.
fn digest(value: &[u8]) -> String {
    hex(&Sha256::digest(value))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One Secret read by a pod template: a single key, or every key (`None`).
type SecretRead = (String, Option<String>);

/// The Secrets a pod template reads: env `secretKeyRef`s and `envFrom` `secretRef`s of every
/// container and init container, secret volumes and projected secret sources. Image pull
/// secrets are not read by the pods (the kubelet uses them) and are not listed.
fn template_reads(template: &PodTemplateSpec) -> BTreeSet<SecretRead> {
    let mut reads = BTreeSet::new();
    let Some(spec) = &template.spec else {
        return reads;
    };
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    for c in containers {
        for e in c.env.iter().flatten() {
            if let Some(r) = e
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
            {
                reads.insert((r.name.clone(), Some(r.key.clone())));
            }
        }
        for e in c.env_from.iter().flatten() {
            if let Some(r) = &e.secret_ref {
                reads.insert((r.name.clone(), None));
            }
        }
    }
    for v in spec.volumes.iter().flatten() {
        if let Some(name) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            reads.insert((name, None));
        }
        let sources = v.projected.as_ref().and_then(|p| p.sources.as_ref());
        for s in sources.into_iter().flatten() {
            if let Some(secret) = &s.secret {
                reads.insert((secret.name.clone(), None));
            }
        }
    }
    reads
}

fn pod_template(o: &DesiredObject) -> Option<PodTemplateSpec> {
    if !STAMPED_KINDS.contains(&o.kind.as_str()) {
        return None;
    }
    let template = o.object.pointer("/spec/template")?;
    PodTemplateSpec::deserialize(template).ok()
}

/// The names of the Secrets the stamped pod templates of `objects` read, sorted.
pub fn secrets_read(objects: &[DesiredObject]) -> BTreeSet<String> {
    objects
        .iter()
        .filter_map(pod_template)
        .flat_map(|t| template_reads(&t))
        .map(|(name, _)| name)
        .collect()
}

/// The hash of what `template` reads of the Secrets `digests` knows; `None` when it reads none
/// of them. Each read contributes `(secret, key, digest)` lines, sorted; a key the Secret lacks
/// contributes `-`, so that the key appearing is a change too.
fn template_hash(template: &PodTemplateSpec, digests: &SecretDigests) -> Option<String> {
    let mut lines = BTreeSet::new();
    for (name, key) in template_reads(template) {
        let Some(keys) = digests.0.get(&name) else {
            continue;
        };
        match key {
            Some(key) => {
                let d = keys.get(&key).map_or("-", String::as_str);
                lines.insert(format!("{name}\0{key}\0{d}"));
            }
            None => {
                // The Secret itself, so that an empty Secret is still an input.
                lines.insert(format!("{name}\0\0"));
                for (key, d) in keys {
                    lines.insert(format!("{name}\0{key}\0{d}"));
                }
            }
        }
    }
    if lines.is_empty() {
        return None;
    }
    let mut h = Sha256::new();
    for l in &lines {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    Some(hex(&h.finalize()))
}

/// Stamps [`INPUTS_HASH_ANNOTATION`] on the pod template of every Deployment and StatefulSet of
/// `objects` that reads a Secret `digests` knows. Other objects are left exactly as built.
pub fn stamp(objects: &mut [DesiredObject], digests: &SecretDigests) {
    for o in objects.iter_mut() {
        let Some(hash) = pod_template(o).and_then(|t| template_hash(&t, digests)) else {
            continue;
        };
        let meta = &mut o.object["spec"]["template"]["metadata"];
        if !meta.is_object() {
            *meta = Value::Object(Default::default());
        }
        let annotations = &mut meta["annotations"];
        if !annotations.is_object() {
            *annotations = Value::Object(Default::default());
        }
        annotations[INPUTS_HASH_ANNOTATION] = Value::String(hash);
    }
}

#[cfg(test)]
mod tests;
