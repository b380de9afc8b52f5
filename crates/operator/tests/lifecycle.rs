//! Upgrades, restarts and many instances, on the local control plane.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use wandb_api::WeightsAndBiases;
use wandb_engine::names;
use wandb_manifest::ManifestLocation;
use wandb_testkit::wait_for;

use common::{TIMEOUT, cr_yaml, fixtures, start, wait_ready};

/// Deployment names an instance of `version` runs with `features`, from the manifest itself.
fn expected_deployments(cr: &str, version: &str, features: &[(&str, bool)]) -> BTreeSet<String> {
    let m = ManifestLocation::parse(&fixtures())
        .unwrap()
        .load(version)
        .unwrap();
    let overrides: BTreeMap<String, bool> = features
        .iter()
        .map(|(k, v)| ((*k).to_string(), *v))
        .collect();
    let features = m.effective_features(&overrides);
    m.enabled_applications(&features)
        .map(|(app, _)| format!("{cr}-{app}"))
        .collect()
}

/// The Deployments of instance `cr` (managed services are StatefulSets, so these are its apps).
async fn app_deployments(api: &Api<Deployment>, cr: &str) -> BTreeSet<String> {
    let lp = ListParams::default().labels(&format!("{}={cr}", names::INSTANCE_LABEL));
    api.list(&lp)
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|d| d.metadata.name)
        .collect()
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn upgrade_0_79_to_0_84_prunes_removed_apps_and_creates_new_ones() {
    let ns = wandb_testkit::namespace("life-upgrade").await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let deployments: Api<Deployment> = ns.api();
    // 0.79.0 with its `proxy` app (nginx-proxy, which 0.84.0 no longer ships); the upgrade also
    // turns on `filestreamQueue`, which adds the filestream app.
    let mut yaml = cr_yaml("wb", &fixtures(), "0.79.0");
    yaml.push_str("    features: {proxy: true}\n");
    ns.apply_yaml(&yaml).await;
    wait_ready(&wb, "wb").await;
    let old = expected_deployments("wb", "0.79.0", &[("proxy", true)]);
    let new = expected_deployments(
        "wb",
        "0.84.0",
        &[("proxy", true), ("filestreamQueue", true)],
    );
    assert_eq!(app_deployments(&deployments, "wb").await, old);
    assert!(old.contains("wb-nginx-proxy") && !new.contains("wb-nginx-proxy"));
    assert!(new.contains("wb-filestream") && !old.contains("wb-filestream"));

    let upgrade = json!({"spec": {"wandb": {"version": "0.84.0", "features": {"proxy": true, "filestreamQueue": true}}}});
    wb.patch("wb", &PatchParams::default(), &Patch::Merge(upgrade))
        .await
        .unwrap();
    wait_for("Ready at 0.84.0", TIMEOUT, || async {
        let s = wb.get("wb").await?.status.unwrap_or_default();
        Ok((s.ready && s.version.as_deref() == Some("0.84.0")).then_some(()))
    })
    .await;
    wait_for("exactly the 0.84.0 applications", TIMEOUT, || async {
        Ok((app_deployments(&deployments, "wb").await == new).then_some(()))
    })
    .await;
    assert!(!old.difference(&new).collect::<Vec<_>>().is_empty());
    for removed in old.difference(&new) {
        assert!(
            deployments.get_opt(removed).await.unwrap().is_none(),
            "{removed} is pruned"
        );
    }
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn restart_after_migrations_start_creates_no_duplicates_and_keeps_secrets() {
    let ns = wandb_testkit::namespace("life-restart").await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let jobs: Api<Job> = ns.api();
    let secrets: Api<Secret> = ns.api();
    ns.apply_yaml(&cr_yaml("wb", &fixtures(), "0.84.0")).await;
    let migrations = ListParams::default().labels(&format!("{}=migration", names::COMPONENT_LABEL));
    let first = wait_for("a migration Job", TIMEOUT, || async {
        let l = jobs.list(&migrations).await?.items;
        Ok((!l.is_empty()).then_some(l))
    })
    .await;
    // The operator dies with migrations under way.
    running.stop().await;
    let session = secrets.get("wb-session-key").await.unwrap().data;
    let uids: BTreeMap<String, String> = first
        .iter()
        .map(|j| {
            (
                j.metadata.name.clone().unwrap(),
                j.metadata.uid.clone().unwrap(),
            )
        })
        .collect();

    let running = start(&ns).await;
    // Until Ready, no Job of the same name is ever replaced by a new one.
    wait_for("Ready after the restart", TIMEOUT, || async {
        for j in jobs.list(&migrations).await?.items {
            let name = j.metadata.name.clone().unwrap();
            if let Some(uid) = uids.get(&name) {
                assert_eq!(
                    Some(uid),
                    j.metadata.uid.as_ref(),
                    "migration Job {name} was re-created"
                );
            }
        }
        let s = wb.get("wb").await?.status.unwrap_or_default();
        Ok(s.ready.then_some(()))
    })
    .await;
    assert_eq!(
        secrets.get("wb-session-key").await.unwrap().data,
        session,
        "generated secrets are not regenerated"
    );
    let st = wb.get("wb").await.unwrap().status.unwrap();
    assert_eq!(
        st.wandb
            .unwrap()
            .migration
            .unwrap()
            .last_success_version
            .as_deref(),
        Some("0.84.0")
    );
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn two_instances_in_one_namespace_and_ten_across_namespaces_converge() {
    let cluster = wandb_testkit::cluster().await;
    let shared = cluster.namespace("life-many").await;
    let _pv = shared.start_volume_provisioner();
    let mut others = Vec::new();
    for i in 0..10 {
        let ns = cluster.namespace(&format!("life-many-{i}")).await;
        let pv = ns.start_volume_provisioner();
        others.push((ns, pv));
    }
    let mut watched: Vec<String> = others.iter().map(|(ns, _)| ns.name().to_string()).collect();
    watched.push(shared.name().to_string());
    let running = common::start_for(&shared, watched).await;

    // The built-in manifest keeps this light: 3 services and 3 apps per instance.
    for name in ["a", "b"] {
        shared
            .apply_yaml(&cr_yaml(name, "builtin://", "0.84.0"))
            .await;
    }
    for (ns, _) in &others {
        ns.apply_yaml(&cr_yaml("wandb", "builtin://", "0.84.0"))
            .await;
    }
    let shared_wb: Api<WeightsAndBiases> = shared.api();
    for name in ["a", "b"] {
        wait_ready(&shared_wb, name).await;
    }
    for (ns, _) in &others {
        wait_ready(&ns.api(), "wandb").await;
    }
    // No collisions: each instance's objects carry its own name and only its own.
    let deployments: Api<Deployment> = shared.api();
    for name in ["a", "b"] {
        let mine = app_deployments(&deployments, name).await;
        assert_eq!(mine.len(), 3, "{name}: {mine:?}");
        assert!(
            mine.iter().all(|d| d.starts_with(&format!("{name}-"))),
            "{mine:?}"
        );
    }
    let secrets: Api<Secret> = shared.api();
    let a = secrets.get("a-mysql-credentials").await.unwrap().data;
    let b = secrets.get("b-mysql-credentials").await.unwrap().data;
    assert_ne!(a, b, "each instance has its own credentials");

    let mut nss = vec![shared];
    for (ns, pv) in others {
        drop(pv);
        nss.push(ns);
    }
    common::finish_all(running, nss).await;
}
