//! In-place takeover on the local control plane, from objects shaped like the official
//! operator's installations:
//!
//! - the v1 operator's (the operator-wandb chart as Helm release `w`: its release Secret, `-bc`
//!   Deployments, a pre-rename Deployment under one of our names, its Service, its session-key
//!   Secret, a Redis StatefulSet and its volume): the session key is kept (the Secret our pods
//!   read holds the chart's value), data untouched, the predecessor's finalizer dropped, the old
//!   Deployments serving until ours are Available and gone after, the same-named one adopted;
//! - the same with the v1 resource created as v1 through our conversion webhook, the chart's
//!   MySQL and Redis reconnected (no StatefulSet of ours, the volumes untouched);
//! - the official v2 operator's (Deployments controlled by an `Application`, labelled like
//!   ours): managed services refused, then taken over once they are external.

mod common;

use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use wandb_api::WeightsAndBiases;
use wandb_testkit::wait_for;

use common::predecessor::{
    CR, SESSION_KEY, V2_KEY, chart_labels, chart_objects, install_application_crd,
    official_v2_objects,
};
use common::{TIMEOUT, condition, wait_ready};

fn available(d: &Deployment) -> bool {
    let s = d.status.clone().unwrap_or_default();
    s.conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Available" && c.status == "True")
        && s.updated_replicas.unwrap_or(0) >= d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// Every Deployment event, in the API server's order: (name, Available, deleted or deleting).
type DeploymentLog = Arc<Mutex<Vec<(String, bool, bool)>>>;

fn deployment_log(api: Api<Deployment>) -> (DeploymentLog, tokio::task::JoinHandle<()>) {
    let log: DeploymentLog = Arc::default();
    let l = log.clone();
    let task = tokio::spawn(async move {
        let mut s = watcher(api, watcher::Config::default()).boxed();
        while let Some(Ok(e)) = s.next().await {
            let mut l = l.lock().unwrap();
            match e {
                watcher::Event::Apply(d) | watcher::Event::InitApply(d) => {
                    let gone = d.metadata.deletion_timestamp.is_some();
                    l.push((d.name_any(), available(&d), gone));
                }
                watcher::Event::Delete(d) => l.push((d.name_any(), false, true)),
                _ => {}
            }
        }
    });
    (log, task)
}

fn secret_text(s: &Secret, key: &str) -> Option<String> {
    s.data
        .as_ref()?
        .get(key)
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn a_chart_install_is_taken_over_in_place() {
    let ns = wandb_testkit::namespace("takeover").await;
    ns.cluster().require_ready_node().await;
    for o in chart_objects() {
        ns.apply_yaml(&o).await;
    }
    let deployments: Api<Deployment> = ns.api();
    for d in ["w-app-bc", "w-parquet-bc", "w-console-bc", "w-weave"] {
        wait_for(
            "the chart's Deployments to be Available",
            TIMEOUT,
            || async { Ok(deployments.get_opt(d).await?.filter(available)) },
        )
        .await;
    }
    let replica_sets: Api<ReplicaSet> = ns.api();
    let old_weave_rs = replica_sets
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|rs| rs.owner_references().iter().any(|o| o.name == "w-weave"))
        .expect("the old weave ReplicaSet");
    let pvcs: Api<PersistentVolumeClaim> = ns.api();
    let pvc_before = pvcs.get("redis-data-w-redis-master-0").await.unwrap();

    // Every Deployment event in order, to prove the old ones go only after ours are Available.
    let (log, watch) = deployment_log(deployments.clone());

    // The resource, as the conversion of the v1 one stores it, still carrying the v1
    // operator's finalizer. No volume provisioner yet: our managed services stay Pending, so
    // our applications cannot roll out.
    let running = common::start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let cr = common::cr_yaml(CR, "builtin://", "0.84.0").replace(
        "metadata: {name: w}",
        "metadata: {name: w, finalizers: [finalizer.app.wandb.com]}",
    );
    ns.apply_yaml(&cr).await;
    let (_, msg) = wait_for("TakeoverComplete=False", TIMEOUT, || async {
        Ok(condition(&wb, CR, "TakeoverComplete")
            .await
            .filter(|(s, _)| s == "False"))
    })
    .await;
    assert!(msg.contains("Helm release"), "{msg}");
    assert!(
        msg.contains("credentials adopted into w-session-key"),
        "{msg}"
    );
    // The session key: adopted, never regenerated (users stay logged in).
    let secrets: Api<Secret> = ns.api();
    let ours = secrets.get("w-session-key").await.unwrap();
    assert_eq!(secret_text(&ours, "key").as_deref(), Some(SESSION_KEY));
    assert_eq!(
        ours.annotations()
            .get("apps.wandb.com/adopted-from")
            .map(String::as_str),
        Some("w-gorilla-session-key/GORILLA_SESSION_KEY")
    );
    // Nothing of ours serves yet: the old Deployments all stay, and the same-named one was
    // orphaned, its pods still running.
    for d in ["w-app-bc", "w-parquet-bc", "w-console-bc"] {
        let d = deployments.get(d).await.unwrap();
        assert!(d.metadata.deletion_timestamp.is_none() && available(&d));
    }
    let rs = replica_sets.get(&old_weave_rs.name_any()).await.unwrap();
    assert_eq!(rs.status.as_ref().and_then(|s| s.ready_replicas), Some(1));
    // The v1 operator's finalizer is gone (its operator would never remove it); ours is there.
    let finalizers = wb.get(CR).await.unwrap().finalizers().to_vec();
    assert!(
        !finalizers.iter().any(|f| f == "finalizer.app.wandb.com"),
        "{finalizers:?}"
    );

    // Volumes bind: ours roll out, and the replaced Deployments go.
    let _pv = ns.start_volume_provisioner();
    wait_ready(&wb, CR).await;
    let (_, msg) = wait_for("TakeoverComplete=True", TIMEOUT, || async {
        Ok(condition(&wb, CR, "TakeoverComplete")
            .await
            .filter(|(s, _)| s == "True"))
    })
    .await;
    assert!(msg.contains("w-console-bc"), "left in place, named: {msg}");
    // Each step is also an event on the resource.
    for reason in ["TakeoverInProgress", "TakeoverComplete"] {
        common::wait_for_event(&ns, reason, |e| e.reason.as_deref() == Some(reason)).await;
    }
    for d in ["w-app-bc", "w-parquet-bc"] {
        wait_for("the replaced Deployment to be gone", TIMEOUT, || async {
            Ok(deployments.get_opt(d).await?.is_none().then_some(()))
        })
        .await;
    }
    // Nothing of ours replaces the console (its feature is off): it stays.
    assert!(deployments.get_opt("w-console-bc").await.unwrap().is_some());
    // The orphaned ReplicaSet was adopted by our w-weave and rolled over.
    wait_for(
        "the old weave ReplicaSet adopted and scaled down",
        TIMEOUT,
        || async {
            Ok(replica_sets
                .get_opt(&old_weave_rs.name_any())
                .await?
                .filter(|rs| {
                    rs.owner_references()
                        .iter()
                        .any(|o| o.name == "w-weave" && o.controller == Some(true))
                        && rs.spec.as_ref().and_then(|s| s.replicas) == Some(0)
                }))
        },
    )
    .await;

    // Order: each old Deployment was deleted only after ours for its application was Available.
    watch.abort();
    let log = log.lock().unwrap().clone();
    for (old, new) in [("w-app-bc", "w-app"), ("w-parquet-bc", "w-parquet")] {
        let deleted = log
            .iter()
            .position(|(n, _, gone)| n == old && *gone)
            .unwrap_or_else(|| panic!("{old} deleted: {log:?}"));
        let ours_available = log
            .iter()
            .position(|(n, avail, _)| n == new && *avail)
            .unwrap_or_else(|| panic!("{new} Available: {log:?}"));
        assert!(
            ours_available < deleted,
            "{old} deleted before {new} was Available: {log:?}"
        );
    }

    // The Secret our app's pods read for the session key is the adopted one.
    let app = deployments.get("w-app").await.unwrap();
    let env = app.spec.unwrap().template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap_or_default();
    let session = env
        .iter()
        .find(|e| e.name == "GORILLA_SESSION_KEY")
        .and_then(|e| e.value_from.as_ref()?.secret_key_ref.clone())
        .expect("GORILLA_SESSION_KEY from a Secret");
    assert_eq!(
        (session.name.as_str(), session.key.as_str()),
        ("w-session-key", "key")
    );
    // Data untouched: the chart's StatefulSet and its volume, its session-key Secret.
    let pvc_after = pvcs.get("redis-data-w-redis-master-0").await.unwrap();
    assert_eq!(pvc_after.uid(), pvc_before.uid());
    assert!(pvc_after.metadata.deletion_timestamp.is_none());
    assert_eq!(pvc_after.labels(), pvc_before.labels());
    let sts: Api<StatefulSet> = ns.api();
    assert!(
        sts.get("w-redis-master")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_none()
    );
    let chart_secret = secrets.get("w-gorilla-session-key").await.unwrap();
    assert_eq!(
        secret_text(&chart_secret, "GORILLA_SESSION_KEY").as_deref(),
        Some(SESSION_KEY)
    );

    running.finish(ns).await;
}

const EXTERNAL: &str = "  mysql: {default: {externalMysql: {host: {name: ext, key: h}, database: {name: ext, key: d}, \
    username: {name: ext, key: u}, password: {name: ext, key: p}}}}\n  \
    redis: {default: {externalRedis: {host: {name: ext, key: h}}}}\n  \
    objectStore: {default: {externalObjectStore: {bucket: {name: ext, key: b}}}}\n";

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn an_official_v2_install_is_taken_over_and_its_managed_services_are_never_replaced_empty() {
    let ns = wandb_testkit::namespace("takeover-v2").await;
    ns.cluster().require_ready_node().await;
    install_application_crd(&ns).await;
    let _crd = ns.cluster().delete_on_drop::<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    >("applications.apps.wandb.com");
    official_v2_objects(&ns).await;
    let deployments: Api<Deployment> = ns.api();
    wait_for(
        "the official Deployment to be Available",
        TIMEOUT,
        || async { Ok(deployments.get_opt("app").await?.filter(available)) },
    )
    .await;
    let (log, watch) = deployment_log(deployments.clone());

    // As the official operator stored it: managed services. Ours would start empty beside
    // its data: refused, nothing written.
    let running = common::start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let cr = common::cr_yaml(CR, "builtin://", "0.84.0").replace(
        "metadata: {name: w}",
        "metadata: {name: w, finalizers: [wandb.apps.wandb.com/cleanup]}",
    );
    ns.apply_yaml(&cr).await;
    let (_, msg) = wait_for("Stalled=True (TakeoverCollision)", TIMEOUT, || async {
        Ok(condition(&wb, CR, "Stalled")
            .await
            .filter(|(s, m)| s == "True" && m.contains("official v2 operator")))
    })
    .await;
    assert!(msg.contains("mysql.default"), "{msg}");
    let sts: Api<StatefulSet> = ns.api();
    assert!(
        sts.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        deployments
            .get("app")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_none()
    );

    // Pointed at the existing services as external: taken over.
    common::create_secret(
        &ns.api(),
        "ext",
        &[
            ("h", "db.example.com"),
            ("d", "wandb"),
            ("u", "wandb"),
            ("p", "pw"),
            ("b", "bucket"),
        ],
    )
    .await;
    ns.apply_yaml(&format!("{cr}{EXTERNAL}")).await;
    wait_ready(&wb, CR).await;
    wait_for("TakeoverComplete=True", TIMEOUT, || async {
        Ok(condition(&wb, CR, "TakeoverComplete")
            .await
            .filter(|(s, _)| s == "True"))
    })
    .await;
    wait_for("the official Deployment to be gone", TIMEOUT, || async {
        Ok(deployments.get_opt("app").await?.is_none().then_some(()))
    })
    .await;
    watch.abort();
    let log = log.lock().unwrap().clone();
    let deleted = log
        .iter()
        .position(|(n, _, gone)| n == "app" && *gone)
        .expect("deleted");
    let ours = log
        .iter()
        .position(|(n, a, _)| n == "w-app" && *a)
        .expect("ours Available");
    assert!(ours < deleted, "removed before ours was Available: {log:?}");
    // The generated session key (same name as ours) kept as it was.
    let secrets: Api<Secret> = ns.api();
    let s = secrets.get("w-session-key").await.unwrap();
    assert_eq!(secret_text(&s, "key").as_deref(), Some(V2_KEY));
    let finalizers = wb.get(CR).await.unwrap().finalizers().to_vec();
    assert!(
        !finalizers
            .iter()
            .any(|f| f == "wandb.apps.wandb.com/cleanup"),
        "{finalizers:?}"
    );

    running.finish(ns).await;
}

/// The v1 path end to end: the chart's in-cluster MySQL and Redis (StatefulSets, volumes, the
/// MySQL Secret) and the v1 resource itself as Terraform's Helm module creates it, read through
/// our conversion webhook: our operator reconnects to them, keeps the session key, and replaces
/// the chart's Deployments.
#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn a_v1_resource_and_its_chart_install_are_taken_over_through_the_conversion() {
    let ns = wandb_testkit::namespace("takeover-v1").await;
    ns.cluster().require_ready_node().await;
    let client = ns.client();
    common::install_crd(&client).await;
    let webhook = common::serve_webhook(
        &client,
        ns.name(),
        "webhook-cert",
        wandb_operator::webhook::Policy::default(),
    )
    .await;
    let v1: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), ns.name(), &common::v1_resource());
    let resource = |dry: bool| {
        serde_json::from_value::<kube::api::DynamicObject>(serde_json::json!({
            "apiVersion": "apps.wandb.com/v1", "kind": "WeightsAndBiases",
            "metadata": {"name": if dry { "probe" } else { CR },
                         "finalizers": ["finalizer.app.wandb.com"]},
            "spec": {"values": {
                "global": {"host": "http://w.local", "size": "dev",
                           "bucket": {"provider": "s3", "name": "minio:9000/bucket"}},
                "app": {"image": {"tag": "0.84.0"}},
                "mysql": {"install": true},
            }},
        }))
        .unwrap()
    };
    // The API server picks up the CRD's conversion a moment after it changed.
    wait_for("the webhook to be called", TIMEOUT, || async {
        let dry = kube::api::PostParams {
            dry_run: true,
            ..Default::default()
        };
        let _ = v1.create(&dry, &resource(true)).await;
        Ok((webhook.reviews.load(std::sync::atomic::Ordering::Relaxed) > 0).then_some(()))
    })
    .await;

    for o in chart_objects() {
        ns.apply_yaml(&o).await;
    }
    let l = chart_labels("mysql");
    ns.apply_yaml(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {CR}-mysql\n  labels: {l}\n\
         stringData: {{MYSQL_PASSWORD: chart-mysql-pw, MYSQL_ROOT_PASSWORD: chart-root-pw}}\n---\n\
         apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: {CR}-mysql\n  labels: {l}\nspec:\n  \
         serviceName: {CR}-mysql\n  replicas: 1\n  selector:\n    matchLabels: {{app.kubernetes.io/name: mysql, \
         app.kubernetes.io/instance: {CR}}}\n  template:\n    metadata:\n      labels: {l}\n    spec:\n      \
         containers: [{{name: mysql, image: mysql:8.0}}]\n---\n\
         apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data-{CR}-mysql-0\n  labels: {l}\nspec:\n  \
         accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: 20Gi}}}}\n"
    ))
    .await;
    let pvcs: Api<PersistentVolumeClaim> = ns.api();
    let before: Vec<_> = pvcs
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| (p.name_any(), p.uid()))
        .collect();
    assert_eq!(before.len(), 2);

    let mut ctx = wandb_operator::controller::Context::new(client.clone());
    ctx.anonymous =
        Some(wandb_operator::controller::Context::anonymous_client(ns.cluster().config()).unwrap());
    ctx.default_manifest = Some("builtin://".into());
    let running = common::start_with(&ns, vec![ns.name().to_string()], ctx).await;
    v1.create(&Default::default(), &resource(false))
        .await
        .expect("the API server accepts the v1 resource");
    let wb: Api<WeightsAndBiases> = ns.api();
    wait_ready(&wb, CR).await;
    wait_for("TakeoverComplete=True", TIMEOUT, || async {
        Ok(condition(&wb, CR, "TakeoverComplete")
            .await
            .filter(|(s, _)| s == "True"))
    })
    .await;
    // The same database: the chart's MySQL Service and Secret, never a new one of ours.
    let cr = wb.get(CR).await.unwrap();
    let mysql = serde_json::to_value(&cr.spec).unwrap()["mysql"]["default"].clone();
    assert!(mysql.get("externalMysql").is_some(), "{mysql}");
    let sts: Api<StatefulSet> = ns.api();
    let names: Vec<String> = sts
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|s| s.name_any())
        .collect();
    assert_eq!(
        names,
        ["w-mysql", "w-redis-master"],
        "no StatefulSet of ours"
    );
    for s in ["w-mysql", "w-redis-master"] {
        let s = sts.get(s).await.unwrap();
        assert!(s.metadata.deletion_timestamp.is_none());
        assert_eq!(
            s.labels()
                .get("app.kubernetes.io/managed-by")
                .map(String::as_str),
            Some("Helm")
        );
    }
    let after: Vec<_> = pvcs
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| (p.name_any(), p.uid()))
        .collect();
    assert_eq!(before, after, "the volumes are untouched");
    // The same session key; the chart's Deployments replaced.
    let secrets: Api<Secret> = ns.api();
    let ours = secrets.get("w-session-key").await.unwrap();
    assert_eq!(secret_text(&ours, "key").as_deref(), Some(SESSION_KEY));
    let deployments: Api<Deployment> = ns.api();
    for d in ["w-app-bc", "w-parquet-bc"] {
        wait_for("the replaced Deployment to be gone", TIMEOUT, || async {
            Ok(deployments.get_opt(d).await?.is_none().then_some(()))
        })
        .await;
    }
    let finalizers = wb.get(CR).await.unwrap().finalizers().to_vec();
    assert!(
        !finalizers.iter().any(|f| f == "finalizer.app.wandb.com"),
        "{finalizers:?}"
    );

    running.finish(ns).await;
}

/// A namespace holding no predecessor is looked at once: the passes before the instance's first
/// Ready do not list workloads or Helm release Secrets again.
#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn a_namespace_without_a_predecessor_is_looked_at_once() {
    let ns = wandb_testkit::namespace("no-predecessor").await;
    let running = common::start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let name = "np";
    // Managed services and no volume provisioner: never Ready, so every pass would look.
    ns.apply_yaml(&common::cr_yaml(name, "builtin://", "0.84.0"))
        .await;
    wait_for("a first reconcile", TIMEOUT, || async {
        Ok((!running.ctx.write_history(ns.name(), name).is_empty()).then_some(()))
    })
    .await;

    let requests = running.ctx.metrics.requests.snapshot();
    common::poke_and_count_writes(&running, &ns, name).await;
    let since = running.ctx.metrics.requests.since(&requests);
    let ready = condition(&wb, name, "Ready").await.map(|(s, _)| s);
    assert_ne!(ready.as_deref(), Some("True"), "the pass had to look");
    for resource in ["deployments", "statefulsets", "secrets"] {
        assert_eq!(
            since.get(&("list", resource.to_string())),
            None,
            "a later pass listed {resource}: {since:?}"
        );
    }

    running.finish(ns).await;
}
