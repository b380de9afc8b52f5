//! What the pods of the desired workloads need to exist before a kubelet (or a workload
//! controller) can start them: every non-optional Secret and ConfigMap (and key) they read, their
//! ServiceAccount, and the PersistentVolumeClaims they mount. Pure: the controller looks each
//! need up in what it observed, and `Ready` stays false while one is unmet.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::PodSpec;
use serde::Deserialize as _;

use crate::DesiredObject;

/// The kind of object a pod needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NeedKind {
    Secret,
    ConfigMap,
    ServiceAccount,
    PersistentVolumeClaim,
}

impl NeedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NeedKind::Secret => "Secret",
            NeedKind::ConfigMap => "ConfigMap",
            NeedKind::ServiceAccount => "ServiceAccount",
            NeedKind::PersistentVolumeClaim => "PersistentVolumeClaim",
        }
    }
}

/// One object (and maybe one key of it) a pod cannot start without.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Need {
    pub kind: NeedKind,
    pub name: String,
    /// A key of a Secret or ConfigMap; `None` for the whole object.
    pub key: Option<String>,
    /// Who reads it, e.g. `Deployment w-api container api env LICENSE`.
    pub reader: String,
}

/// What exists, as observed: kind -> name -> the keys it holds (empty for kinds without keys).
pub type Existing = BTreeMap<NeedKind, BTreeMap<String, BTreeSet<String>>>;

/// The needs of every pod template of `objects` (Deployments, StatefulSets, Jobs).
pub fn of_objects(objects: &[DesiredObject]) -> Vec<Need> {
    let mut out = Vec::new();
    for o in objects {
        if !matches!(o.kind.as_str(), "Deployment" | "StatefulSet" | "Job") {
            continue;
        }
        let Some(spec) = o
            .object
            .pointer("/spec/template/spec")
            .and_then(|s| PodSpec::deserialize(s).ok())
        else {
            continue;
        };
        out.extend(of_pod(&spec, &format!("{} {}", o.kind, o.name)));
    }
    out.sort();
    out.dedup();
    out
}

/// The non-optional needs of one pod spec; `reader` names the workload.
pub fn of_pod(pod: &PodSpec, reader: &str) -> Vec<Need> {
    let mut out = Vec::new();
    let mut need = |kind, name: &str, key: Option<&str>, at: String| {
        out.push(Need {
            kind,
            name: name.to_string(),
            key: key.map(str::to_string),
            reader: at,
        })
    };
    let required = |o: Option<bool>| o != Some(true);
    let sa = pod
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or("default");
    need(
        NeedKind::ServiceAccount,
        sa,
        None,
        format!("{reader} serviceAccountName"),
    );
    let containers = pod
        .containers
        .iter()
        .chain(pod.init_containers.iter().flatten());
    for c in containers {
        for e in c.env.iter().flatten() {
            let Some(from) = &e.value_from else { continue };
            let at = format!("{reader} container {} env {}", c.name, e.name);
            if let Some(r) = from
                .secret_key_ref
                .as_ref()
                .filter(|r| required(r.optional))
            {
                need(NeedKind::Secret, &r.name, Some(&r.key), at.clone());
            }
            if let Some(r) = from
                .config_map_key_ref
                .as_ref()
                .filter(|r| required(r.optional))
            {
                need(NeedKind::ConfigMap, &r.name, Some(&r.key), at);
            }
        }
        for f in c.env_from.iter().flatten() {
            let at = format!("{reader} container {} envFrom", c.name);
            if let Some(r) = f.secret_ref.as_ref().filter(|r| required(r.optional)) {
                need(NeedKind::Secret, &r.name, None, at.clone());
            }
            if let Some(r) = f.config_map_ref.as_ref().filter(|r| required(r.optional)) {
                need(NeedKind::ConfigMap, &r.name, None, at);
            }
        }
    }
    for v in pod.volumes.iter().flatten() {
        let at = format!("{reader} volume {}", v.name);
        if let Some(s) = v.secret.as_ref().filter(|s| required(s.optional)) {
            let name = s.secret_name.clone().unwrap_or_default();
            need(NeedKind::Secret, &name, None, at.clone());
            for i in s.items.iter().flatten() {
                need(NeedKind::Secret, &name, Some(&i.key), at.clone());
            }
        }
        if let Some(m) = v.config_map.as_ref().filter(|m| required(m.optional)) {
            need(NeedKind::ConfigMap, &m.name, None, at.clone());
            for i in m.items.iter().flatten() {
                need(NeedKind::ConfigMap, &m.name, Some(&i.key), at.clone());
            }
        }
        for p in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(s) = p.secret.as_ref().filter(|s| required(s.optional)) {
                need(NeedKind::Secret, &s.name, None, at.clone());
                for i in s.items.iter().flatten() {
                    need(NeedKind::Secret, &s.name, Some(&i.key), at.clone());
                }
            }
            if let Some(m) = p.config_map.as_ref().filter(|m| required(m.optional)) {
                need(NeedKind::ConfigMap, &m.name, None, at.clone());
                for i in m.items.iter().flatten() {
                    need(NeedKind::ConfigMap, &m.name, Some(&i.key), at.clone());
                }
            }
        }
        if let Some(c) = &v.persistent_volume_claim {
            need(NeedKind::PersistentVolumeClaim, &c.claim_name, None, at);
        }
    }
    out
}

/// The needs `existing` does not meet, one message each (objects and keys by name, never a
/// value); `origin` names the resource field that set an object's name, when there is one.
pub fn unmet(
    needs: &[Need],
    existing: &Existing,
    origin: &dyn Fn(NeedKind, &str) -> Option<String>,
) -> Vec<String> {
    // One message per missing object or key, listing its first reader (more would not help).
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for n in needs {
        let have = existing.get(&n.kind).and_then(|m| m.get(&n.name));
        let problem = match (have, &n.key) {
            (None, _) => format!("{} {} does not exist", n.kind.as_str(), n.name),
            (Some(keys), Some(k)) if !keys.contains(k) => {
                format!("{} {} has no key {k}", n.kind.as_str(), n.name)
            }
            _ => continue,
        };
        if !seen.insert(problem.clone()) {
            continue;
        }
        let from = origin(n.kind, &n.name)
            .map(|f| format!(" (set by {f})"))
            .unwrap_or_default();
        out.push(format!("{problem}{from}; read by {}", n.reader));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> PodSpec {
        serde_json::from_value(serde_json::json!({
            "serviceAccountName": "runner",
            "containers": [{
                "name": "c",
                "env": [
                    {"name": "A", "valueFrom": {"secretKeyRef": {"name": "conn", "key": "url"}}},
                    {"name": "B", "valueFrom": {"secretKeyRef": {"name": "conn", "key": "replicated"}}},
                    {"name": "C", "valueFrom": {"secretKeyRef": {"name": "conn", "key": "cluster", "optional": true}}},
                    {"name": "D", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "x"}}}
                ],
                "envFrom": [{"secretRef": {"name": "gone"}}, {"configMapRef": {"name": "gone", "optional": true}}]
            }],
            "volumes": [
                {"name": "v", "secret": {"secretName": "conn", "items": [{"key": "ca", "path": "ca.pem"}]}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn missing_objects_and_keys_are_named_with_their_reader_and_origin() {
        let needs = of_pod(&pod(), "Deployment w-api");
        let existing: Existing = BTreeMap::from([
            (
                NeedKind::Secret,
                BTreeMap::from([("conn".to_string(), BTreeSet::from(["url".to_string()]))]),
            ),
            (
                NeedKind::ConfigMap,
                BTreeMap::from([("cm".to_string(), BTreeSet::from(["x".to_string()]))]),
            ),
            (
                NeedKind::PersistentVolumeClaim,
                BTreeMap::from([("data".to_string(), BTreeSet::new())]),
            ),
        ]);
        let origin = |k: NeedKind, n: &str| {
            (k == NeedKind::ServiceAccount && n == "runner")
                .then(|| "spec.wandb.serviceAccount.serviceAccountName".to_string())
        };
        assert_eq!(
            unmet(&needs, &existing, &origin),
            [
                "ServiceAccount runner does not exist (set by \
                 spec.wandb.serviceAccount.serviceAccountName); read by Deployment w-api \
                 serviceAccountName",
                "Secret conn has no key replicated; read by Deployment w-api container c env B",
                "Secret gone does not exist; read by Deployment w-api container c envFrom",
                "Secret conn has no key ca; read by Deployment w-api volume v",
            ]
        );
    }

    #[test]
    fn optional_references_need_nothing() {
        let needs = of_pod(&pod(), "Job j");
        assert!(!needs.iter().any(|n| n.key.as_deref() == Some("cluster")));
        assert!(
            !needs
                .iter()
                .any(|n| n.kind == NeedKind::ConfigMap && n.name == "gone")
        );
    }
}
