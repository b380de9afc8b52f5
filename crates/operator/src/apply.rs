//! The one apply engine: server-side apply (field manager `wandb-operator`, forced) of any
//! desired object, and pruning by labels what an instance owns but no longer renders.
//!
//! The API server decides the result: a field applied before and no longer desired is removed by
//! the next apply, because the field manager no longer claims it. A write is skipped only when
//! that apply could change nothing: the live object carries the hash of exactly this desired
//! object (so the last apply already dropped every stale field) *and* still holds every desired
//! value (so nobody changed a field we own since).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;
use wandb_engine::names;

use crate::owned_cache::OwnedCache;

/// The field manager of every write.
pub const FIELD_MANAGER: &str = "wandb-operator";

/// Kinds the engine renders, `(apiVersion, kind, plural)`; also the kinds that are pruned
/// (PersistentVolumeClaims are data and never pruned) and watched (their caches are what a
/// reconcile observes). The Gateway API kinds come from CRDs a
/// cluster may not have: see [`is_not_served`].
pub const KINDS: &[(&str, &str, &str)] = &[
    ("v1", "ServiceAccount", "serviceaccounts"),
    ("rbac.authorization.k8s.io/v1", "Role", "roles"),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        "rolebindings",
    ),
    ("v1", "ConfigMap", "configmaps"),
    ("v1", "Secret", "secrets"),
    ("v1", "Service", "services"),
    ("apps/v1", "Deployment", "deployments"),
    ("apps/v1", "StatefulSet", "statefulsets"),
    ("batch/v1", "Job", "jobs"),
    (
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
    ),
    ("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    ("networking.k8s.io/v1", "Ingress", "ingresses"),
    (wandb_engine::GATEWAY_API_VERSION, "Gateway", "gateways"),
    (wandb_engine::GATEWAY_API_VERSION, "HTTPRoute", "httproutes"),
];

/// Whether the API server answered that it does not serve the resource at all (404 on a
/// collection: its CRD is not installed). Pruning skips such a kind, so that a cluster without
/// the Gateway API works in every mode that does not use it.
pub fn is_not_served(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// The `ApiResource` of a kind, without discovery: the plural comes from [`KINDS`], or is
/// derived by the usual English rule for kinds the table does not know.
pub fn api_resource(api_version: &str, kind: &str) -> ApiResource {
    let plural = KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, p)| (*p).to_string())
        .unwrap_or_else(|| plural_of(kind));
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), &plural)
}

fn plural_of(kind: &str) -> String {
    let k = kind.to_ascii_lowercase();
    if k.ends_with('s') || k.ends_with("sh") || k.ends_with("ch") || k.ends_with('x') {
        format!("{k}es")
    } else if let Some(stem) = k
        .strip_suffix('y')
        .filter(|stem| !stem.ends_with(['a', 'e', 'i', 'o', 'u']))
    {
        format!("{stem}ies")
    } else {
        format!("{k}s")
    }
}

/// Applies objects in one namespace and counts the writes it makes. It observes the operator's
/// own objects once: from what it wrote or deleted in this pass, else from the controller's
/// watch caches, else (a kind not cached yet) from the API server.
pub struct Applier {
    client: Client,
    namespace: String,
    writes: AtomicUsize,
    cache: OwnedCache,
    /// What this pass wrote (the API server's answer) or deleted (`None`), by `(kind, name)`.
    written: Mutex<HashMap<(String, String), Option<Value>>>,
}

impl Applier {
    /// An applier that reads every object from the API server.
    pub fn new(client: Client, namespace: &str) -> Self {
        Self::with_cache(client, namespace, OwnedCache::default())
    }

    pub fn with_cache(client: Client, namespace: &str, cache: OwnedCache) -> Self {
        Applier {
            client,
            namespace: namespace.to_string(),
            writes: AtomicUsize::new(0),
            cache,
            written: Mutex::default(),
        }
    }

    /// The operator's object `kind/name` as last seen: written in this pass, else cached, else
    /// read. Only for objects the operator labels as its own (see [`crate::owned_cache`]).
    pub async fn live(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<Value>, kube::Error> {
        let key = (kind.to_string(), name.to_string());
        if let Some(seen) = self.written.lock().expect("not poisoned").get(&key) {
            return Ok(seen.clone());
        }
        if let Some(cached) = self.cache.get(api_version, kind, &self.namespace, name) {
            return Ok(cached);
        }
        let live = self.api(api_version, kind).get_opt(name).await?;
        Ok(live.map(|l| serde_json::to_value(&l).expect("objects serialize")))
    }

    /// [`Self::live`] as a typed object.
    pub async fn live_as<K: serde::de::DeserializeOwned>(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
    ) -> Result<Option<K>, kube::Error> {
        // What this pass wrote wins over the cache (as in `live`); otherwise parse the cached
        // text straight into `K`.
        let key = (kind.to_string(), name.to_string());
        let written = self
            .written
            .lock()
            .expect("not poisoned")
            .contains_key(&key);
        if !written
            && let Some(cached) = self.cache.get_as(api_version, kind, &self.namespace, name)
        {
            return Ok(cached);
        }
        Ok(self
            .live(api_version, kind, name)
            .await?
            .and_then(|v| serde_json::from_value(v).ok()))
    }

    /// Records what a write outside [`Self::apply`] returned (e.g. a created Secret).
    pub fn record(&self, kind: &str, name: &str, object: Option<Value>) {
        self.written
            .lock()
            .expect("not poisoned")
            .insert((kind.to_string(), name.to_string()), object);
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// API writes (apply, create, patch, delete) made so far.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::Relaxed)
    }

    /// Counts a write made outside this type (e.g. a status patch).
    pub fn count_write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn api(&self, api_version: &str, kind: &str) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            &self.namespace,
            &api_resource(api_version, kind),
        )
    }

    /// Server-side applies `object` (which carries apiVersion, kind and metadata.name), with
    /// `owner` as its only owner reference when given. Returns whether it wrote.
    pub async fn apply(
        &self,
        object: &Value,
        owner: Option<&OwnerReference>,
    ) -> Result<bool, kube::Error> {
        let mut desired = object.clone();
        if let Some(owner) = owner {
            desired["metadata"]["ownerReferences"] =
                serde_json::to_value([owner]).expect("owner references serialize");
        }
        let api_version = desired["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = desired["kind"].as_str().unwrap_or_default().to_string();
        let name = desired["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let live = self.live(&api_version, &kind, &name).await?;
        if let Some(live) = &live
            && let Some(note) = keep_immutable(&kind, &mut desired, live)
        {
            tracing::warn!(%kind, %name, "{note}");
        }
        stamp_applied_hash(&mut desired);
        let why = match &live {
            None => "absent",
            Some(live) if applied_hash_of(live) != applied_hash_of(&desired) => "changed",
            Some(live) if !is_subset(&desired, live) => {
                tracing::debug!(%kind, %name, field = %first_difference(&desired, live, ""), "drifted");
                "drifted"
            }
            Some(_) => return Ok(false),
        };
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let answer = self
            .api(&api_version, &kind)
            .patch(&name, &params, &Patch::Apply(&desired))
            .await?;
        self.count_write();
        self.record(
            &kind,
            &name,
            Some(serde_json::to_value(&answer).expect("objects serialize")),
        );
        tracing::debug!(%kind, %name, why, "applied");
        Ok(true)
    }

    /// Server-side applies an `Opaque` Secret with `metadata` and the values of `data`, like
    /// [`Self::apply`] (values are never logged).
    pub async fn apply_secret(
        &self,
        metadata: ObjectMeta,
        data: std::collections::BTreeMap<String, String>,
        owner: Option<&OwnerReference>,
    ) -> Result<bool, kube::Error> {
        let secret = k8s_openapi::api::core::v1::Secret {
            metadata,
            data: Some(
                data.into_iter()
                    .map(|(k, v)| (k, k8s_openapi::ByteString(v.into_bytes())))
                    .collect(),
            ),
            type_: Some("Opaque".into()),
            ..Default::default()
        };
        let mut value = serde_json::to_value(&secret).expect("Secrets serialize");
        value["apiVersion"] = "v1".into();
        value["kind"] = "Secret".into();
        self.apply(&value, owner).await
    }

    /// The create-only mode, for data the operator generates (credentials): creates `object`
    /// unless the operator's object of its kind and name exists, and never overwrites it.
    /// Returns whether it created. Created concurrently by someone else: theirs is kept.
    pub async fn create_once(&self, object: &Value) -> Result<bool, kube::Error> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        if self.live(api_version, kind, name).await?.is_some() {
            return Ok(false);
        }
        let dynamic: DynamicObject =
            serde_json::from_value(object.clone()).expect("a desired object is a DynamicObject");
        match self
            .api(api_version, kind)
            .create(&PostParams::default(), &dynamic)
            .await
        {
            Ok(created) => {
                self.count_write();
                self.record(
                    kind,
                    name,
                    Some(serde_json::to_value(&created).expect("objects serialize")),
                );
                tracing::debug!(%kind, %name, "created once");
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes `kind`/`name` (background propagation). Returns whether it existed.
    pub async fn delete(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
    ) -> Result<bool, kube::Error> {
        match self
            .api(api_version, kind)
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => {
                self.count_write();
                self.record(kind, name, None);
                tracing::debug!(%kind, %name, "deleted");
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Metadata of the operator's objects of `kind` that belong to `instance`: from the watch
    /// caches, else (a kind not cached yet) listed.
    pub async fn owned(
        &self,
        api_version: &str,
        kind: &str,
        instance: &str,
    ) -> Result<Vec<ObjectMeta>, kube::Error> {
        if let Some(cached) = self
            .cache
            .owned_by(api_version, kind, &self.namespace, instance)
        {
            return Ok(cached);
        }
        let selector = format!(
            "{}={},{}={}",
            names::INSTANCE_LABEL,
            names::label_value(instance),
            names::MANAGED_BY_LABEL,
            names::MANAGED_BY
        );
        match self
            .api(api_version, kind)
            .list_metadata(&ListParams::default().labels(&selector))
            .await
        {
            Ok(l) => Ok(l.items.into_iter().map(|o| o.metadata).collect()),
            Err(e) if is_not_served(&e) => Ok(vec![]),
            Err(e) => Err(e),
        }
    }

    /// Deletes objects of every known kind labelled as this instance's and managed by the
    /// operator whose `(kind, name)` is not in `keep`. Objects marked retained are never pruned.
    /// Returns the pruned `kind/name`s.
    pub async fn prune(
        &self,
        instance: &str,
        keep: &BTreeSet<(String, String)>,
    ) -> Result<Vec<String>, kube::Error> {
        let selector = format!(
            "{}={},{}={}",
            names::INSTANCE_LABEL,
            names::label_value(instance),
            names::MANAGED_BY_LABEL,
            names::MANAGED_BY
        );
        let mut pruned = Vec::new();
        for (api_version, kind, _) in KINDS {
            let owned: Vec<ObjectMeta> =
                match self
                    .cache
                    .owned_by(api_version, kind, &self.namespace, instance)
                {
                    Some(cached) => cached,
                    None => match self
                        .api(api_version, kind)
                        .list_metadata(&ListParams::default().labels(&selector))
                        .await
                    {
                        Ok(l) => l.items.into_iter().map(|o| o.metadata).collect(),
                        // Nothing of a kind the cluster does not serve can exist.
                        Err(e) if is_not_served(&e) => continue,
                        Err(e) => return Err(e),
                    },
                };
            for item in owned {
                let name = item.name.clone().unwrap_or_default();
                let retained = item
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(names::RETAIN_ANNOTATION))
                    .is_some_and(|v| v == "true");
                // The official v2 operator labels its objects as we do: what one of its
                // Applications controls is never ours to prune (a takeover removes it).
                let officials = item.owner_references.iter().flatten().any(|o| {
                    o.controller == Some(true)
                        && wandb_engine::takeover::is_official_application(&o.api_version, &o.kind)
                });
                if retained
                    || officials
                    || item.deletion_timestamp.is_some()
                    || keep.contains(&((*kind).to_string(), name.clone()))
                {
                    continue;
                }
                if self.delete(api_version, kind, &name).await? {
                    pruned.push(format!("{kind}/{name}"));
                }
            }
        }
        Ok(pruned)
    }
}

/// Stamps [`names::APPLIED_HASH_ANNOTATION`] on `desired`: a hash of the object without it.
pub fn stamp_applied_hash(desired: &mut Value) {
    let meta = desired["metadata"].as_object_mut();
    if let Some(meta) = meta
        && let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut)
    {
        a.remove(names::APPLIED_HASH_ANNOTATION);
        if a.is_empty() {
            meta.remove("annotations");
        }
    }
    let hash = applied_hash(desired);
    let meta = &mut desired["metadata"];
    if !meta["annotations"].is_object() {
        meta["annotations"] = Value::Object(Default::default());
    }
    meta["annotations"][names::APPLIED_HASH_ANNOTATION] = Value::String(hash);
}

/// A hash of the whole desired object (serde_json's maps are ordered, so equal objects hash
/// equal). 128 bits: a collision would hide a change, so no short hash here.
fn applied_hash(desired: &Value) -> String {
    use sha2::{Digest, Sha256};
    // Streamed into the hasher: the same bytes as `desired.to_string()`, without building it.
    let mut hasher = Sha256::new();
    serde_json::to_writer(&mut hasher, desired).expect("a JSON value serializes");
    let digest = hasher.finalize();
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Whether applying `desired` (stamped by [`stamp_applied_hash`]) to `live` would change
/// nothing: the last apply was of this very object, and every value it set is still there.
pub fn unchanged(desired: &Value, live: &Value) -> bool {
    applied_hash_of(desired).is_some()
        && applied_hash_of(desired) == applied_hash_of(live)
        && is_subset(desired, live)
}

fn applied_hash_of(v: &Value) -> Option<&str> {
    v.pointer("/metadata/annotations")
        .and_then(|a| a.get(names::APPLIED_HASH_ANNOTATION))
        .and_then(Value::as_str)
}

/// Fields the API server never lets change keep their live value, so that a changed desired
/// value (e.g. a different storage size from new sizing) does not fail the whole apply. Returns
/// what was kept, to log.
pub fn keep_immutable(kind: &str, desired: &mut Value, live: &Value) -> Option<String> {
    if kind != "StatefulSet" {
        return None;
    }
    let live_vct = live.pointer("/spec/volumeClaimTemplates")?;
    let desired_vct = desired.pointer_mut("/spec/volumeClaimTemplates")?;
    if is_subset(desired_vct, live_vct) {
        return None;
    }
    *desired_vct = live_vct.clone();
    Some(
        "spec.volumeClaimTemplates differ from the live StatefulSet's and are immutable: kept \
         the live ones (resize the PersistentVolumeClaims to change storage)"
            .into(),
    )
}

/// Whether every field of `desired` is present with an equal value in `live`: objects by key,
/// arrays element-wise with equal length. The API server's omissions and normalizations count as
/// equal: a zero value (`null`, `""`, `false`, `0`, `{}`, `[]`) matches an absent field, numbers
/// compare by value, and resource quantities by amount (`1000m` == `1`).
pub fn is_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d.iter().all(|(k, dv)| match l.get(k) {
            Some(lv) => is_subset(dv, lv),
            None => is_zero(dv),
        }),
        (Value::Array(d), Value::Array(l)) => {
            d.len() == l.len() && d.iter().zip(l).all(|(dv, lv)| is_subset(dv, lv))
        }
        (Value::Number(d), Value::Number(l)) => d.as_f64() == l.as_f64(),
        (Value::String(d), Value::String(l)) => {
            d == l || matches!((quantity(d), quantity(l)), (Some(a), Some(b)) if a == b)
        }
        (d, Value::Null) => is_zero(d),
        (d, l) => d == l,
    }
}

/// The path of the first field where `live` does not hold `desired` (for logs).
fn first_difference(desired: &Value, live: &Value, path: &str) -> String {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d
            .iter()
            .find(|(k, dv)| !l.get(*k).map_or(is_zero(dv), |lv| is_subset(dv, lv)))
            .map(|(k, dv)| {
                let p = format!("{path}.{k}");
                l.get(k)
                    .map_or(p.clone(), |lv| first_difference(dv, lv, &p))
            })
            .unwrap_or_else(|| path.to_string()),
        (Value::Array(d), Value::Array(l)) if d.len() == l.len() => d
            .iter()
            .zip(l)
            .enumerate()
            .find(|(_, (dv, lv))| !is_subset(dv, lv))
            .map(|(i, (dv, lv))| first_difference(dv, lv, &format!("{path}[{i}]")))
            .unwrap_or_else(|| path.to_string()),
        _ => path.to_string(),
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_zero),
    }
}

/// A Kubernetes resource quantity as a number (`500m` -> 0.5, `1Gi` -> 1073741824).
fn quantity(s: &str) -> Option<f64> {
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    if s.is_empty() || !s.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    for (suffix, factor) in SUFFIXES {
        if let Some(num) = s.strip_suffix(suffix) {
            return num.parse::<f64>().ok().map(|n| n * factor);
        }
    }
    s.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The hash of an object must not change between releases (a new hash re-applies every
    /// object of every instance on upgrade): it is SHA-256 of the compact JSON text, as before
    /// it was streamed.
    #[test]
    fn the_applied_hash_is_that_of_the_compact_json_text() {
        use sha2::{Digest, Sha256};
        let object = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "w-api",
            "labels": {"b": "é\"q", "a": "1"}}, "spec": {"ports": [{"port": 8080}]}});
        let text: String = Sha256::digest(object.to_string().as_bytes())
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(applied_hash(&object), text);
    }

    #[test]
    fn plurals_without_discovery() {
        let ar = api_resource("networking.k8s.io/v1", "Ingress");
        assert_eq!(
            (ar.group.as_str(), ar.plural.as_str()),
            ("networking.k8s.io", "ingresses")
        );
        let ar = api_resource("v1", "ConfigMap");
        assert_eq!((ar.group.as_str(), ar.version.as_str()), ("", "v1"));
        assert_eq!(ar.api_version, "v1");
        assert_eq!(
            api_resource("gateway.networking.k8s.io/v1", "HTTPRoute").plural,
            "httproutes"
        );
        assert_eq!(plural_of("NetworkPolicy"), "networkpolicies");
        assert_eq!(plural_of("Gateway"), "gateways");
    }

    #[test]
    fn gateway_api_kinds_are_pruned_and_a_missing_crd_is_not_served() {
        for kind in ["Gateway", "HTTPRoute"] {
            assert!(
                KINDS
                    .iter()
                    .any(|(v, k, _)| *v == wandb_engine::GATEWAY_API_VERSION && *k == kind),
                "{kind}"
            );
        }
        let status = |code| {
            kube::Error::Api(
                kube::core::Status::failure(
                    "the server could not find the requested resource",
                    "NotFound",
                )
                .with_code(code)
                .boxed(),
            )
        };
        assert!(is_not_served(&status(404)));
        assert!(!is_not_served(&status(403)));
    }

    #[test]
    fn subset_ignores_server_additions_and_normalizations() {
        let desired = json!({
            "metadata": {"name": "a", "labels": {"x": "1"}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{
                "name": "c", "image": "i:1",
                "env": [{"name": "A", "value": ""}],
                "resources": {"requests": {"cpu": "1000m", "memory": "1Gi"}},
                "securityContext": {}
            }]}}}
        });
        let live = json!({
            "metadata": {"name": "a", "labels": {"x": "1", "other": "y"}, "uid": "u"},
            "spec": {"replicas": 1, "revisionHistoryLimit": 10, "template": {"spec": {"containers": [{
                "name": "c", "image": "i:1", "imagePullPolicy": "IfNotPresent",
                "env": [{"name": "A"}],
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}
            }]}}},
            "status": {}
        });
        assert!(is_subset(&desired, &live));
    }

    #[test]
    fn subset_sees_drift() {
        let desired = json!({"spec": {"containers": [{"name": "c", "image": "i:1"}]}});
        let changed = json!({"spec": {"containers": [{"name": "c", "image": "i:2"}]}});
        let extra = json!({"spec": {"containers": [
            {"name": "c", "image": "i:1"}, {"name": "d", "image": "i:1"}
        ]}});
        assert!(!is_subset(&desired, &changed));
        assert!(!is_subset(&desired, &extra));
        assert!(!is_subset(&json!({"a": "x"}), &json!({})));
        assert!(!is_subset(
            &json!({"r": {"cpu": "1"}}),
            &json!({"r": {"cpu": "2"}})
        ));
        assert!(!is_subset(&json!({"a": true}), &json!({})));
    }

    #[test]
    fn a_write_is_skipped_only_for_the_same_desired_object_with_its_values_live() {
        let mut desired = json!({"metadata": {"name": "sa", "annotations": {"role": "arn:1"}}});
        stamp_applied_hash(&mut desired);
        let live = desired.clone();
        assert!(unchanged(&desired, &live));

        // The user removes the annotation: the live object still contains every desired field
        // (a one-way subset check would skip), but the hash differs, so the apply runs and the
        // API server drops the field.
        let mut removed = json!({"metadata": {"name": "sa"}});
        assert!(is_subset(&removed, &live));
        stamp_applied_hash(&mut removed);
        assert!(!unchanged(&removed, &live));

        // Someone edits a field we own: same hash, but the value is gone.
        let mut drifted = live.clone();
        drifted["metadata"]["annotations"]["role"] = "arn:2".into();
        assert!(!unchanged(&desired, &drifted));

        // An object last written by someone else (no hash) is applied.
        let mut foreign = live.clone();
        foreign["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove(names::APPLIED_HASH_ANNOTATION);
        assert!(!unchanged(&desired, &foreign));
    }

    #[test]
    fn the_applied_hash_is_stable_and_ignores_its_own_annotation() {
        let mut a = json!({"metadata": {"name": "x"}, "spec": {"k": 1}});
        stamp_applied_hash(&mut a);
        let mut again = a.clone();
        stamp_applied_hash(&mut again);
        assert_eq!(a, again);
        let mut other = json!({"metadata": {"name": "x"}, "spec": {"k": 2}});
        stamp_applied_hash(&mut other);
        assert_ne!(
            a["metadata"]["annotations"][names::APPLIED_HASH_ANNOTATION],
            other["metadata"]["annotations"][names::APPLIED_HASH_ANNOTATION]
        );
    }

    #[test]
    fn statefulset_volume_claim_templates_keep_their_live_value() {
        let vct = |size: &str| {
            json!({"spec": {"replicas": 1, "volumeClaimTemplates": [
                {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": size}}}}
            ]}})
        };
        let live = vct("10Gi");
        let mut desired = vct("5Gi");
        assert!(keep_immutable("StatefulSet", &mut desired, &live).is_some());
        assert_eq!(desired, live);
        let mut same = vct("10Gi");
        assert!(keep_immutable("StatefulSet", &mut same, &live).is_none());
        let mut deployment = vct("5Gi");
        assert!(keep_immutable("Deployment", &mut deployment, &live).is_none());
        assert_eq!(deployment, vct("5Gi"));
    }

    #[test]
    fn quantities() {
        assert_eq!(quantity("500m"), Some(0.5));
        assert_eq!(quantity("1Ki"), Some(1024.0));
        assert_eq!(quantity("2"), Some(2.0));
        assert_eq!(quantity("abc"), None);
        assert_eq!(quantity("Mi"), None);
    }
}
