//! Every Secret and ConfigMap key a Ready instance's pods read must exist: the local control
//! plane's fake nodes start no container, so a reference a kubelet would refuse (a missing key
//! of a required `secretKeyRef`, a missing Secret volume) still shows as Ready here. Run by
//! [`super::wait_ready`], so every test that reaches Ready checks it.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodSpec, Secret};
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use wandb_api::WeightsAndBiases;
use wandb_engine::decide::pod_needs::{self, NeedKind};
use wandb_engine::names::INSTANCE_LABEL;
use wandb_manifest::ManifestLocation;

/// What one pod spec needs to exist: (`Secret`/`ConfigMap`, name, key or `None` for the whole
/// object, where).
pub type Need = (&'static str, String, Option<String>, String);

/// The non-optional Secret and ConfigMap references of `pod` (env, envFrom, volumes), from the
/// engine's own walk of what a pod needs (the same one Ready is computed from).
pub fn needs(pod: &PodSpec, at: &str) -> Vec<Need> {
    pod_needs::of_pod(pod, at)
        .into_iter()
        .filter_map(|n| {
            let kind = match n.kind {
                NeedKind::Secret => "Secret",
                NeedKind::ConfigMap => "ConfigMap",
                _ => return None,
            };
            Some((kind, n.name, n.key, n.reader))
        })
        .collect()
}

/// The needs that `secrets` and `maps` (name -> keys) do not satisfy, as messages.
pub fn unmet(
    needs: &[Need],
    secrets: &BTreeMap<String, BTreeSet<String>>,
    maps: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    needs
        .iter()
        .filter_map(|(kind, name, key, at)| {
            let have = if *kind == "Secret" { secrets } else { maps };
            match (have.get(name), key) {
                (None, _) => Some(format!("{at}: {kind} {name} does not exist")),
                (Some(keys), Some(k)) if !keys.contains(k) => Some(format!(
                    "{at}: {kind} {name} has no key {k} (keys: {keys:?})"
                )),
                _ => None,
            }
        })
        .collect()
}

/// Secrets a migration of `cr`'s manifest creates when it runs, which the fake nodes never do:
/// those whose name a migration's env carries as a literal `*_SECRET_NAME` (the
/// `internal-signer` migration writes `INTERNAL_SIGNER_K8S_SECRET_NAME`, which api and glue
/// mount). On a real cluster the migrations finish before any app starts. The Jobs themselves
/// are deleted once recorded, so the manifest is read: `file://` and `builtin://` as the
/// resource names them, `oci://` from the fixtures the tests push.
fn created_by_migrations(cr: &WeightsAndBiases) -> BTreeSet<String> {
    let location = match cr.spec.wandb.manifest_repository.as_deref() {
        Some(l) if l.starts_with("oci://") => super::fixtures(),
        Some(l) => l.to_string(),
        // Only the conversion test leaves it unset (a v1 resource cannot name one); it runs the
        // controller with the fixtures as the operator's default.
        None => super::fixtures(),
    };
    let manifest = ManifestLocation::parse(&location)
        .and_then(|l| l.load(&cr.spec.wandb.version))
        .unwrap_or_else(|e| panic!("the manifest of {location}: {e}"));
    manifest
        .migrations
        .keys()
        .flat_map(|m| manifest.migration_env(m).unwrap_or_default())
        .filter(|e| e.name.ends_with("_SECRET_NAME"))
        .filter_map(|e| e.value)
        .collect()
}

/// Panics unless every key that instance `cr`'s pods and pod templates (Deployments,
/// StatefulSets, Jobs) read exists in its namespace.
pub async fn assert_pod_keys_exist(client: &kube::Client, cr: &WeightsAndBiases) {
    let ns = &cr.namespace().expect("a namespaced instance");
    let name = &cr.name_any();
    let lp = ListParams::default().labels(&format!("{INSTANCE_LABEL}={name}"));
    let mut all = Vec::new();
    let mut add = |spec: Option<&PodSpec>, at: String| {
        if let Some(spec) = spec {
            all.extend(needs(spec, &at));
        }
    };
    for d in Api::<Deployment>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .expect("list Deployments")
    {
        let at = format!("Deployment {}", d.name_any());
        add(d.spec.as_ref().and_then(|s| s.template.spec.as_ref()), at);
    }
    for s in Api::<StatefulSet>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .expect("list StatefulSets")
    {
        let at = format!("StatefulSet {}", s.name_any());
        add(s.spec.as_ref().and_then(|s| s.template.spec.as_ref()), at);
    }
    for j in Api::<Job>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .expect("list Jobs")
    {
        let at = format!("Job {}", j.name_any());
        add(j.spec.as_ref().and_then(|s| s.template.spec.as_ref()), at);
    }
    for p in Api::<Pod>::namespaced(client.clone(), ns)
        .list(&lp)
        .await
        .expect("list Pods")
    {
        let at = format!("Pod {}", p.name_any());
        add(p.spec.as_ref(), at);
    }
    assert!(
        !all.is_empty(),
        "instance {ns}/{name} has no pod reading any key"
    );
    let secrets: BTreeMap<String, BTreeSet<String>> = Api::<Secret>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("list Secrets")
        .into_iter()
        .map(|s| {
            let mut keys: BTreeSet<String> = s.data.unwrap_or_default().into_keys().collect();
            keys.extend(s.string_data.unwrap_or_default().into_keys());
            (s.metadata.name.unwrap_or_default(), keys)
        })
        .collect();
    let maps: BTreeMap<String, BTreeSet<String>> = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("list ConfigMaps")
        .into_iter()
        .map(|m| {
            let mut keys: BTreeSet<String> = m.data.unwrap_or_default().into_keys().collect();
            keys.extend(m.binary_data.unwrap_or_default().into_keys());
            (m.metadata.name.unwrap_or_default(), keys)
        })
        .collect();
    let by_migrations = created_by_migrations(cr);
    all.retain(|(kind, secret, _, _)| !(*kind == "Secret" && by_migrations.contains(secret)));
    let unmet = unmet(&all, &secrets, &maps);
    assert!(
        unmet.is_empty(),
        "instance {ns}/{name} is Ready but a kubelet would not start its pods:\n  {}",
        unmet.join("\n  ")
    );
}

#[test]
fn a_missing_key_is_reported_and_optional_ones_are_not() {
    let pod: PodSpec = serde_json::from_value(serde_json::json!({
        "containers": [{
            "name": "c",
            "env": [
                {"name": "A", "valueFrom": {"secretKeyRef": {"name": "conn", "key": "url"}}},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "conn", "key": "replicated"}}},
                {"name": "C", "valueFrom": {"secretKeyRef": {"name": "conn", "key": "clustername", "optional": true}}},
                {"name": "D", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "x"}}}
            ],
            "envFrom": [{"secretRef": {"name": "gone"}}, {"configMapRef": {"name": "gone", "optional": true}}]
        }],
        "volumes": [{"name": "v", "secret": {"secretName": "conn", "items": [{"key": "ca", "path": "ca.pem"}]}}]
    }))
    .unwrap();
    let needs = needs(&pod, "Pod p");
    let secrets = BTreeMap::from([("conn".to_string(), BTreeSet::from(["url".to_string()]))]);
    let maps = BTreeMap::from([("cm".to_string(), BTreeSet::from(["x".to_string()]))]);
    let unmet = unmet(&needs, &secrets, &maps);
    assert_eq!(
        unmet,
        [
            "Pod p container c env B: Secret conn has no key replicated (keys: {\"url\"})",
            "Pod p container c envFrom: Secret gone does not exist",
            "Pod p volume v: Secret conn has no key ca (keys: {\"url\"})",
        ]
    );
}
