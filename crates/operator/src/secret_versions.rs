//! Which user Secrets exist, at which `resourceVersion`, from the metadata-only watch the
//! controller already runs to act on rotations; and the values of those an instance read, kept by
//! version. A settled pass then reads no Secret from the API server: a Secret the watch says is
//! absent is absent, one at the version last read has the values read then. A new version (or a
//! watch not listed yet) is read once.
//!
//! The watch keeps names and versions only (annotations such as kubectl's
//! `last-applied-configuration`, which can hold a Secret's data, are dropped as they arrive).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::FutureExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::user_secrets::SecretValues;

/// `(namespace, name)`.
type Key = (String, String);

/// What the watch says about a Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// The watch has not listed its namespace yet: ask the API server.
    Unknown,
    Absent,
    At(String),
}

/// Cheap to clone; shared by the controller's watch and every reconcile.
#[derive(Clone, Default)]
pub struct SecretVersions {
    stores: Arc<Mutex<Vec<Store<PartialObjectMeta<Secret>>>>>,
    values: Arc<Mutex<HashMap<Key, (String, SecretValues)>>>,
}

impl SecretVersions {
    /// Replaces the watch stores (the controller restarts its watches as a whole).
    pub fn set_stores(&self, stores: Vec<Store<PartialObjectMeta<Secret>>>) {
        *self.stores.lock().expect("not poisoned") = stores;
    }

    /// Where the watch has Secret `namespace/name`.
    pub fn seen(&self, namespace: &str, name: &str) -> Seen {
        let stores = self.stores.lock().expect("not poisoned");
        let key = ObjectRef::new(name).within(namespace);
        let mut any_ready = false;
        for store in stores.iter() {
            if !matches!(store.wait_until_ready().now_or_never(), Some(Ok(()))) {
                continue;
            }
            any_ready = true;
            if let Some(meta) = store.get(&key) {
                return match &meta.metadata.resource_version {
                    Some(rv) => Seen::At(rv.clone()),
                    None => Seen::Unknown,
                };
            }
        }
        // With one store per watched namespace, a ready store that lacks it may be another
        // namespace's: only a single (or cluster-wide) store can say "absent" for sure.
        if any_ready && stores.len() == 1 {
            Seen::Absent
        } else {
            Seen::Unknown
        }
    }

    /// The values read at `version`, if that is the version last read.
    pub fn values_at(&self, namespace: &str, name: &str, version: &str) -> Option<SecretValues> {
        let values = self.values.lock().expect("not poisoned");
        values
            .get(&(namespace.to_string(), name.to_string()))
            .filter(|(rv, _)| rv == version)
            .map(|(_, v)| v.clone())
    }

    /// Remembers what was read at `version` (`None`: the Secret was absent).
    pub fn remember(&self, namespace: &str, name: &str, read: Option<(String, SecretValues)>) {
        let key = (namespace.to_string(), name.to_string());
        let mut values = self.values.lock().expect("not poisoned");
        match read {
            Some(v) => values.insert(key, v),
            None => values.remove(&key),
        };
    }
}
