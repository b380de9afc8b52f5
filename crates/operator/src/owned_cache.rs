//! The controller's watch caches of what instances own: one store per kind of
//! [`crate::apply::KINDS`] (and per namespace scope), filled by the same watches that trigger
//! reconciles. A reconcile reads owned objects from here instead of asking the API server again.
//!
//! Only objects labelled `app.kubernetes.io/managed-by=wandb-operator` are watched, so a miss means
//! "the operator has no such object", never "the user has no such object": user Secrets are read
//! from the API server.
//!
//! Objects are kept as their JSON text (managedFields stripped), not as parsed trees: a parsed
//! `serde_json::Value` costs about ten times its text in allocations, and at 1000 instances the
//! trees were most of the operator's memory. A reconcile parses the few objects it looks at.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use futures::{Stream, StreamExt as _, TryStreamExt as _};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DynamicObject, TypeMeta};
use kube::runtime::watcher::Event;
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, ResourceExt as _};
use serde_json::Value;
use tokio::sync::watch;
use wandb_engine::names;

use crate::apply::api_resource;

/// One kind's store in one namespace scope.
struct KindStore {
    api_version: &'static str,
    kind: &'static str,
    store: Arc<CompactStore>,
}

/// An object as cached: its metadata (managedFields stripped; what pruning and retiring read:
/// names, labels, annotations, owners, creation and deletion), and the whole object as JSON.
struct Entry {
    meta: ObjectMeta,
    json: Box<str>,
}

/// Objects by (namespace, name), replaced as a whole when a (re)listing completes.
#[derive(Default)]
struct Objects {
    live: HashMap<(String, String), Entry>,
    /// Names in `live` by (namespace, instance label): a pass looks up its own objects without
    /// scanning every instance's (at 1000 instances the scan was most of a settled pass).
    by_instance: HashMap<(String, String), BTreeSet<String>>,
    /// The listing in progress (between `Init` and `InitDone`).
    relisting: Option<HashMap<(String, String), Entry>>,
}

impl Objects {
    fn insert(&mut self, key: (String, String), entry: Entry) {
        if let Some(old) = self.live.remove(&key) {
            self.unindex(&key, &old);
        }
        if let Some(instance) = instance_of(&entry.meta) {
            self.by_instance
                .entry((key.0.clone(), instance.to_string()))
                .or_default()
                .insert(key.1.clone());
        }
        self.live.insert(key, entry);
    }

    fn remove(&mut self, key: &(String, String)) {
        if let Some(old) = self.live.remove(key) {
            self.unindex(key, &old);
        }
    }

    fn unindex(&mut self, key: &(String, String), entry: &Entry) {
        let Some(instance) = instance_of(&entry.meta) else {
            return;
        };
        let at = (key.0.clone(), instance.to_string());
        if let Some(names) = self.by_instance.get_mut(&at) {
            names.remove(&key.1);
            if names.is_empty() {
                self.by_instance.remove(&at);
            }
        }
    }

    /// Replaces everything with a completed listing.
    fn replace(&mut self, listed: HashMap<(String, String), Entry>) {
        self.live.clear();
        self.by_instance.clear();
        for (key, entry) in listed {
            self.insert(key, entry);
        }
    }
}

fn instance_of(meta: &ObjectMeta) -> Option<&str> {
    meta.labels
        .as_ref()?
        .get(names::INSTANCE_LABEL)
        .map(String::as_str)
}

/// A store of one watch: ready once its first listing is complete.
struct CompactStore {
    objects: RwLock<Objects>,
    ready: watch::Sender<bool>,
}

impl CompactStore {
    fn new() -> Self {
        CompactStore {
            objects: RwLock::default(),
            ready: watch::Sender::new(false),
        }
    }

    fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    async fn wait_until_ready(&self) {
        let mut rx = self.ready.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    fn apply(&self, event: &Event<DynamicObject>) {
        let mut objects = self.objects.write().expect("not poisoned");
        match event {
            Event::Apply(o) => objects.insert(key(o), entry(o)),
            Event::Delete(o) => objects.remove(&key(o)),
            Event::Init => objects.relisting = Some(HashMap::new()),
            Event::InitApply(o) => {
                objects
                    .relisting
                    .get_or_insert_with(HashMap::new)
                    .insert(key(o), entry(o));
            }
            Event::InitDone => {
                let listed = objects.relisting.take().unwrap_or_default();
                objects.replace(listed);
                drop(objects);
                self.ready.send_replace(true);
            }
        }
    }

    /// The cached object parsed straight from its JSON text into `K`; `None` as well when it
    /// does not parse as a `K`.
    fn get_as<K: serde::de::DeserializeOwned>(&self, namespace: &str, name: &str) -> Option<K> {
        let objects = self.objects.read().expect("not poisoned");
        let entry = objects
            .live
            .get(&(namespace.to_string(), name.to_string()))?;
        serde_json::from_str(&entry.json).ok()
    }

    /// Metadata of the objects in `namespace` labelled as `instance`'s.
    fn owned_by(&self, namespace: &str, instance: &str) -> Vec<ObjectMeta> {
        let objects = self.objects.read().expect("not poisoned");
        let Some(names) = objects
            .by_instance
            .get(&(namespace.to_string(), instance.to_string()))
        else {
            return Vec::new();
        };
        names
            .iter()
            .filter_map(|n| objects.live.get(&(namespace.to_string(), n.clone())))
            .map(|e| e.meta.clone())
            .collect()
    }
}

fn key(o: &DynamicObject) -> (String, String) {
    (o.namespace().unwrap_or_default(), o.name_any())
}

fn entry(o: &DynamicObject) -> Entry {
    Entry {
        meta: o.metadata.clone(),
        json: serde_json::to_string(o)
            .expect("objects serialize")
            .into_boxed_str(),
    }
}

/// The stores of every watched kind; cheap to clone. Empty (every lookup a miss that falls back
/// to the API server) until the controller starts.
#[derive(Clone, Default)]
pub struct OwnedCache {
    stores: Arc<Vec<KindStore>>,
    not_served: Arc<Vec<(&'static str, &'static str)>>,
}

/// The watch stream of one kind, which fills its store as it is polled, and that kind's
/// [`ApiResource`]: for `Controller::owns_stream_with`.
pub type OwnedStream = (
    std::pin::Pin<Box<dyn Stream<Item = Result<DynamicObject, watcher::Error>> + Send>>,
    ApiResource,
);

/// Objects per page of a watch's listing (see [`OwnedCacheBuilder::watch`]).
const LIST_PAGE: u32 = 100;

/// Collects the stores while the controller's watches are set up.
#[derive(Default)]
pub struct OwnedCacheBuilder {
    stores: Vec<KindStore>,
    not_served: Vec<(&'static str, &'static str)>,
}

impl OwnedCacheBuilder {
    /// The watch of `kind` in `namespace` (every namespace when `None`), whose store joins the
    /// cache. The stream must be polled (by the controller) for the store to fill.
    pub fn watch(
        &mut self,
        client: &Client,
        namespace: Option<&str>,
        api_version: &'static str,
        kind: &'static str,
    ) -> OwnedStream {
        let resource = api_resource(api_version, kind);
        let api = match namespace {
            Some(ns) => Api::<DynamicObject>::namespaced_with(client.clone(), ns, &resource),
            None => Api::<DynamicObject>::all_with(client.clone(), &resource),
        };
        let store = Arc::new(CompactStore::new());
        self.stores.push(KindStore {
            api_version,
            kind,
            store: store.clone(),
        });
        let managed = format!("{}={}", names::MANAGED_BY_LABEL, names::MANAGED_BY);
        let types = TypeMeta {
            api_version: resource.api_version.clone(),
            kind: resource.kind.clone(),
        };
        // Pages of 100, not kube's 500: a page is held whole, as `serde_json::Value` trees,
        // until its objects are cached as text; at 1000 instances every kind lists at once.
        let config = watcher::Config::default()
            .labels(&managed)
            .page_size(LIST_PAGE);
        let stream = watcher(api, config)
            .default_backoff()
            .modify(move |o| {
                // Nothing decides on who manages which field: keep the cache small.
                o.managed_fields_mut().clear();
                // Items of a list carry no apiVersion and kind; watch events do. Without them a
                // cached object would never look like what was applied.
                o.types.get_or_insert_with(|| types.clone());
            })
            .inspect_ok(move |event| store.apply(event))
            .touched_objects()
            .boxed();
        (stream, resource)
    }

    /// Records that the cluster does not serve `kind` (its CRD is not installed): the cache
    /// then knows that the operator has no such object, without asking.
    pub fn not_served(&mut self, api_version: &'static str, kind: &'static str) {
        self.not_served.push((api_version, kind));
    }

    pub fn build(self) -> OwnedCache {
        OwnedCache {
            stores: Arc::new(self.stores),
            not_served: Arc::new(self.not_served),
        }
    }
}

impl OwnedCache {
    /// The ready stores of a kind (a store is ready once its first listing arrived).
    fn stores_of<'a>(&'a self, api_version: &'a str, kind: &'a str) -> Option<Vec<&'a KindStore>> {
        let stores: Vec<&KindStore> = self
            .stores
            .iter()
            .filter(|s| s.api_version == api_version && s.kind == kind)
            .collect();
        let ready = !stores.is_empty() && stores.iter().all(|s| s.store.is_ready());
        ready.then_some(stores)
    }

    /// The operator's object `kind/name` in `namespace`: `Some(None)` when the cache knows there
    /// is none, `None` when the kind is not cached (yet).
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Option<Value>> {
        self.get_as(api_version, kind, namespace, name)
    }

    /// [`Self::get`] as a typed object, parsed once from the cached text.
    pub fn get_as<K: serde::de::DeserializeOwned>(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Option<K>> {
        if self.is_not_served(api_version, kind) {
            return Some(None);
        }
        let stores = self.stores_of(api_version, kind)?;
        Some(stores.iter().find_map(|s| s.store.get_as(namespace, name)))
    }

    /// Metadata of the operator's objects of `kind` in `namespace` that belong to `instance`;
    /// `None` when the kind is not cached (yet).
    pub fn owned_by(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        instance: &str,
    ) -> Option<Vec<ObjectMeta>> {
        if self.is_not_served(api_version, kind) {
            return Some(Vec::new());
        }
        let stores = self.stores_of(api_version, kind)?;
        let label = names::label_value(instance);
        Some(
            stores
                .iter()
                .flat_map(|s| s.store.owned_by(namespace, &label))
                .collect(),
        )
    }

    fn is_not_served(&self, api_version: &str, kind: &str) -> bool {
        self.not_served
            .iter()
            .any(|(v, k)| *v == api_version && *k == kind)
    }

    /// Waits until every store has its first listing, at most `timeout` (a kind whose watch
    /// cannot start is then read from the API server).
    pub async fn wait_ready(&self, timeout: std::time::Duration) {
        let all = futures::future::join_all(self.stores.iter().map(|s| s.store.wait_until_ready()));
        let _ = tokio::time::timeout(timeout, all).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(name: &str, instance: &str, image: &str) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "ns",
                "labels": {names::INSTANCE_LABEL: instance}},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}},
        }))
        .unwrap()
    }

    fn image(store: &CompactStore, name: &str) -> Option<String> {
        store.get_as::<Value>("ns", name).map(|v| {
            v.pointer("/spec/template/spec/containers/0/image")
                .and_then(Value::as_str)
                .unwrap()
                .to_string()
        })
    }

    fn owned_names(store: &CompactStore, instance: &str) -> Vec<String> {
        store
            .owned_by("ns", instance)
            .into_iter()
            .filter_map(|m| m.name)
            .collect()
    }

    #[test]
    fn a_store_is_ready_after_its_first_listing_and_a_relisting_replaces_it_whole() {
        let store = CompactStore::new();
        store.apply(&Event::Init);
        store.apply(&Event::InitApply(object("a", "w1", "one")));
        store.apply(&Event::InitApply(object("b", "w2", "one")));
        assert!(
            !store.is_ready(),
            "not ready before the listing is complete"
        );
        assert_eq!(
            image(&store, "a"),
            None,
            "a listing in progress is not served"
        );
        store.apply(&Event::InitDone);
        assert!(store.is_ready());
        assert_eq!(image(&store, "a").as_deref(), Some("one"));

        store.apply(&Event::Apply(object("a", "w1", "two")));
        assert_eq!(
            image(&store, "a").as_deref(),
            Some("two"),
            "a change is kept"
        );
        store.apply(&Event::Delete(object("b", "w2", "one")));
        assert_eq!(image(&store, "b"), None, "a deletion is forgotten");
        assert!(owned_names(&store, "w2").is_empty(), "and leaves the index");
        assert_eq!(owned_names(&store, "w1"), ["a"]);
        // Relabelled to another instance: found under the new one only.
        store.apply(&Event::Apply(object("a", "w3", "two")));
        assert!(owned_names(&store, "w1").is_empty());
        assert_eq!(owned_names(&store, "w3"), ["a"]);

        // A relisting that no longer has `a` (deleted while the watch was down) drops it.
        store.apply(&Event::Init);
        store.apply(&Event::InitApply(object("c", "w1", "three")));
        store.apply(&Event::InitDone);
        assert_eq!(image(&store, "a"), None);
        assert_eq!(owned_names(&store, "w1"), ["c"]);
        assert!(owned_names(&store, "w2").is_empty());
    }
}
