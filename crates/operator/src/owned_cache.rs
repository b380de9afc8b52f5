//! The controller's watch caches of what instances own: one reflector per kind of
//! [`crate::apply::KINDS`] (and per namespace scope), filled by the same watches that trigger
//! reconciles. A reconcile reads owned objects from here instead of asking the API server again.
//!
//! Only objects labelled `app.kubernetes.io/managed-by=wandb-operator` are watched, so a miss means
//! "the operator has no such object", never "the user has no such object": user Secrets are read
//! from the API server.

use std::sync::Arc;

use futures::{FutureExt as _, Stream, StreamExt as _};
use kube::api::{Api, ApiResource, DynamicObject, TypeMeta};
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, ResourceExt as _};
use serde_json::Value;
use wandb_engine::names;

use crate::apply::api_resource;

/// One kind's store in one namespace scope.
struct KindStore {
    api_version: &'static str,
    kind: &'static str,
    resource: ApiResource,
    store: Store<DynamicObject>,
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
        let writer = Writer::new(resource.clone());
        self.stores.push(KindStore {
            api_version,
            kind,
            resource: resource.clone(),
            store: writer.as_reader(),
        });
        let managed = format!("{}={}", names::MANAGED_BY_LABEL, names::MANAGED_BY);
        let types = TypeMeta {
            api_version: resource.api_version.clone(),
            kind: resource.kind.clone(),
        };
        let stream = watcher(api, watcher::Config::default().labels(&managed))
            .default_backoff()
            .modify(move |o| {
                // Nothing decides on who manages which field: keep the cache small.
                o.managed_fields_mut().clear();
                // Items of a list carry no apiVersion and kind; watch events do. Without them a
                // cached object would never look like what was applied.
                o.types.get_or_insert_with(|| types.clone());
            })
            .reflect(writer)
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
        let ready = !stores.is_empty()
            && stores
                .iter()
                .all(|s| matches!(s.store.wait_until_ready().now_or_never(), Some(Ok(()))));
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
        if self.is_not_served(api_version, kind) {
            return Some(None);
        }
        let stores = self.stores_of(api_version, kind)?;
        Some(stores.iter().find_map(|s| {
            let key = ObjectRef::new_with(name, s.resource.clone()).within(namespace);
            s.store
                .get(&key)
                .map(|o| serde_json::to_value(o.as_ref()).expect("objects serialize"))
        }))
    }

    /// Names, retain annotation and deletion state of the operator's objects of `kind` in
    /// `namespace` that belong to `instance`; `None` when the kind is not cached (yet).
    pub fn owned_by(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        instance: &str,
    ) -> Option<Vec<Arc<DynamicObject>>> {
        if self.is_not_served(api_version, kind) {
            return Some(Vec::new());
        }
        let stores = self.stores_of(api_version, kind)?;
        let label = names::label_value(instance);
        Some(
            stores
                .iter()
                .flat_map(|s| {
                    s.store.state_filter(|o| {
                        o.namespace().as_deref() == Some(namespace)
                            && o.labels().get(names::INSTANCE_LABEL) == Some(&label)
                    })
                })
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
