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

/// The metadata store of one watched namespace scope (`None`: every namespace).
pub type ScopedStore = (Option<String>, Store<PartialObjectMeta<Secret>>);

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
    /// One store per watched namespace scope (`None`: every namespace).
    stores: Arc<Mutex<Vec<ScopedStore>>>,
    values: Arc<Mutex<HashMap<Key, (String, SecretValues)>>>,
}

impl SecretVersions {
    /// Replaces the watch stores (the controller restarts its watches as a whole).
    pub fn set_stores(&self, stores: Vec<ScopedStore>) {
        *self.stores.lock().expect("not poisoned") = stores;
    }

    /// Where the watch has Secret `namespace/name`.
    pub fn seen(&self, namespace: &str, name: &str) -> Seen {
        let stores = self.stores.lock().expect("not poisoned");
        let key = ObjectRef::new(name).within(namespace);
        let Some((_, store)) = stores
            .iter()
            .find(|(scope, _)| scope.as_deref().is_none_or(|s| s == namespace))
        else {
            return Seen::Unknown;
        };
        // Until its first listing arrived, the store knows nothing.
        if !matches!(store.wait_until_ready().now_or_never(), Some(Ok(()))) {
            return Seen::Unknown;
        }
        match store.get(&key) {
            None => Seen::Absent,
            Some(meta) => match &meta.metadata.resource_version {
                Some(rv) => Seen::At(rv.clone()),
                None => Seen::Unknown,
            },
        }
    }

    /// The names of the Secrets in `namespace` starting with `prefix`, from the watch; `None`
    /// until the watch has listed the namespace.
    pub fn names_starting_with(&self, namespace: &str, prefix: &str) -> Option<Vec<String>> {
        let stores = self.stores.lock().expect("not poisoned");
        let (_, store) = stores
            .iter()
            .find(|(scope, _)| scope.as_deref().is_none_or(|s| s == namespace))?;
        if !matches!(store.wait_until_ready().now_or_never(), Some(Ok(()))) {
            return None;
        }
        let mut names: Vec<String> = store
            .state()
            .iter()
            .filter(|m| m.metadata.namespace.as_deref() == Some(namespace))
            .filter_map(|m| m.metadata.name.clone())
            .filter(|n| n.starts_with(prefix))
            .collect();
        names.sort();
        Some(names)
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

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher::Event;

    fn meta(name: &str, rv: &str) -> PartialObjectMeta<Secret> {
        let mut m = PartialObjectMeta::<Secret>::default();
        m.metadata.name = Some(name.into());
        m.metadata.namespace = Some("a".into());
        m.metadata.resource_version = Some(rv.into());
        m
    }

    #[test]
    fn the_watch_says_absent_or_at_which_version_and_values_are_kept_by_version() {
        let mut writer = Writer::<PartialObjectMeta<Secret>>::default();
        let v = SecretVersions::default();
        v.set_stores(vec![(Some("a".into()), writer.as_reader())]);
        assert_eq!(v.seen("a", "db"), Seen::Unknown, "not listed yet");
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitApply(meta("db", "5")));
        writer.apply_watcher_event(&Event::InitDone);
        assert_eq!(v.seen("a", "db"), Seen::At("5".into()));
        assert_eq!(v.seen("a", "gone"), Seen::Absent);
        assert_eq!(v.seen("b", "db"), Seen::Unknown, "a namespace not watched");

        let values = SecretValues::from([("password".to_string(), "x".to_string())]);
        v.remember("a", "db", Some(("5".into(), values.clone())));
        assert_eq!(v.values_at("a", "db", "5"), Some(values));
        assert_eq!(
            v.values_at("a", "db", "6"),
            None,
            "a new version is read again"
        );
        v.remember("a", "db", None);
        assert_eq!(v.values_at("a", "db", "5"), None);
    }

    #[test]
    fn names_by_prefix_come_from_the_watch_once_it_listed() {
        let mut writer = Writer::<PartialObjectMeta<Secret>>::default();
        let v = SecretVersions::default();
        v.set_stores(vec![(Some("a".into()), writer.as_reader())]);
        assert_eq!(
            v.names_starting_with("a", "sh.helm."),
            None,
            "not listed yet"
        );
        writer.apply_watcher_event(&Event::Init);
        for name in [
            "sh.helm.release.v1.w.v2",
            "sh.helm.release.v1.w.v1",
            "w-license",
        ] {
            writer.apply_watcher_event(&Event::InitApply(meta(name, "1")));
        }
        writer.apply_watcher_event(&Event::InitDone);
        assert_eq!(
            v.names_starting_with("a", "sh.helm.release.v1.w.v"),
            Some(vec![
                "sh.helm.release.v1.w.v1".to_string(),
                "sh.helm.release.v1.w.v2".to_string()
            ])
        );
        assert_eq!(
            v.names_starting_with("a", "sh.helm.release.v1.x.v"),
            Some(vec![])
        );
        assert_eq!(
            v.names_starting_with("b", "sh.helm."),
            None,
            "a namespace not watched"
        );
    }
}
