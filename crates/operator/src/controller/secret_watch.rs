//! Reacting to the user's Secrets within seconds: an index of which instances read which Secret
//! (by namespace and name), kept by each reconcile, and a metadata-only watch of Secrets whose
//! events are mapped through it. Only names and versions travel: no Secret data is read or kept by
//! the watch, and a Secret no instance names triggers nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, store::Writer};
use kube::runtime::{Controller, WatchStreamExt as _, watcher};
use kube::{Client, ResourceExt};
use wandb_api::WeightsAndBiases;

/// `(namespace, name)`.
type Key = (String, String);

/// Which instances read which Secrets.
#[derive(Default)]
pub struct SecretIndex {
    inner: Mutex<Index>,
}

#[derive(Default)]
struct Index {
    /// Instance -> the names of the Secrets it reads (in its namespace).
    by_instance: BTreeMap<Key, BTreeSet<String>>,
    /// Secret -> the names of the instances that read it.
    by_secret: BTreeMap<Key, BTreeSet<String>>,
}

impl SecretIndex {
    /// Records that instance `cr` reads exactly `secrets` now.
    pub fn set(&self, cr: &WeightsAndBiases, secrets: BTreeSet<String>) {
        let ns = cr.namespace().unwrap_or_default();
        let name = cr.name_any();
        let mut idx = self.inner.lock().expect("not poisoned");
        let instance = (ns.clone(), name.clone());
        if idx.by_instance.get(&instance) == Some(&secrets) {
            return;
        }
        idx.remove(&instance);
        for s in &secrets {
            idx.by_secret
                .entry((ns.clone(), s.clone()))
                .or_default()
                .insert(name.clone());
        }
        idx.by_instance.insert(instance, secrets);
    }

    /// Records that instance `cr` reads `secrets` too (what it read before is kept until the
    /// next [`SecretIndex::set`]).
    pub fn add(&self, cr: &WeightsAndBiases, secrets: BTreeSet<String>) {
        let instance = (cr.namespace().unwrap_or_default(), cr.name_any());
        let known = self
            .inner
            .lock()
            .expect("not poisoned")
            .by_instance
            .get(&instance)
            .cloned()
            .unwrap_or_default();
        if secrets.is_subset(&known) {
            return;
        }
        self.set(cr, known.union(&secrets).cloned().collect());
    }

    /// Forgets instance `cr` (it is being deleted); returns the Secrets no instance reads now.
    pub fn forget(&self, cr: &WeightsAndBiases) -> Vec<String> {
        let instance = (cr.namespace().unwrap_or_default(), cr.name_any());
        let mut idx = self.inner.lock().expect("not poisoned");
        let read = idx.by_instance.get(&instance).cloned().unwrap_or_default();
        idx.remove(&instance);
        read.into_iter()
            .filter(|s| !idx.by_secret.contains_key(&(instance.0.clone(), s.clone())))
            .collect()
    }

    /// The instances that read Secret `namespace/name`.
    pub fn readers(&self, namespace: &str, name: &str) -> Vec<ObjectRef<WeightsAndBiases>> {
        let idx = self.inner.lock().expect("not poisoned");
        idx.by_secret
            .get(&(namespace.to_string(), name.to_string()))
            .into_iter()
            .flatten()
            .map(|i| ObjectRef::new(i).within(namespace))
            .collect()
    }

    /// The number of Secrets indexed (for tests and metrics).
    pub fn len(&self) -> usize {
        self.inner.lock().expect("not poisoned").by_secret.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Index {
    fn remove(&mut self, instance: &Key) {
        let Some(old) = self.by_instance.remove(instance) else {
            return;
        };
        for s in old {
            let key = (instance.0.clone(), s);
            if let Some(readers) = self.by_secret.get_mut(&key) {
                readers.remove(&instance.1);
                if readers.is_empty() {
                    self.by_secret.remove(&key);
                }
            }
        }
    }
}

/// Adds a metadata-only watch of the Secrets in `ns` (all namespaces when `None`) that
/// reconciles the instances reading a Secret when it is created, changed or deleted.
pub fn watch(
    c: Controller<WeightsAndBiases>,
    client: &Client,
    ns: Option<&str>,
    ctx: std::sync::Arc<super::Context>,
    stores: &mut Vec<crate::secret_versions::ScopedStore>,
) -> Controller<WeightsAndBiases> {
    // Metadata-only lists and watches. The store keeps names and versions for the readers
    // (crate::secret_versions); everything else is dropped as it arrives.
    let api = super::api::<PartialObjectMeta<Secret>>(client, ns);
    let writer = Writer::<PartialObjectMeta<Secret>>::default();
    stores.push((ns.map(str::to_string), writer.as_reader()));
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|m| {
            let keep = ObjectMeta {
                name: m.metadata.name.take(),
                namespace: m.metadata.namespace.take(),
                resource_version: m.metadata.resource_version.take(),
                uid: m.metadata.uid.take(),
                ..Default::default()
            };
            m.metadata = keep;
        })
        .reflect(writer)
        .touched_objects();
    c.watches_stream(stream, move |meta| {
        let ns = meta.namespace().unwrap_or_default();
        ctx.secret_index.readers(&ns, &meta.name_any())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cr(ns: &str, name: &str) -> WeightsAndBiases {
        let mut cr = WeightsAndBiases::new(name, Default::default());
        cr.metadata.namespace = Some(ns.into());
        cr
    }

    fn names(refs: Vec<ObjectRef<WeightsAndBiases>>) -> Vec<String> {
        refs.into_iter().map(|r| r.name).collect()
    }

    #[test]
    fn secrets_map_to_the_instances_of_their_namespace_that_read_them() {
        let idx = SecretIndex::default();
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        idx.set(&cr("a", "w1"), set(&["db", "smtp"]));
        idx.set(&cr("a", "w2"), set(&["db"]));
        idx.set(&cr("b", "w1"), set(&["db"]));
        assert_eq!(names(idx.readers("a", "db")), ["w1", "w2"]);
        assert_eq!(names(idx.readers("a", "smtp")), ["w1"]);
        assert!(idx.readers("a", "other").is_empty());
        assert_eq!(idx.readers("b", "db")[0].namespace.as_deref(), Some("b"));

        // Added to, then set exactly: a Secret no longer named is dropped.
        idx.add(&cr("a", "w1"), set(&["proxy"]));
        assert_eq!(names(idx.readers("a", "proxy")), ["w1"]);
        assert_eq!(names(idx.readers("a", "smtp")), ["w1"]);
        // A Secret no longer named is dropped; a deleted instance reads nothing.
        idx.set(&cr("a", "w1"), set(&["db"]));
        assert!(idx.readers("a", "smtp").is_empty());
        idx.forget(&cr("a", "w1"));
        idx.forget(&cr("a", "w2"));
        assert!(idx.readers("a", "db").is_empty());
        assert_eq!(idx.len(), 1, "only b/db remains");
    }
}
