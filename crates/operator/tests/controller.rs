//! The controller against the local control plane (kwok: Deployment pods become Ready, Job pods
//! Succeed). Each test runs the controller in-process, watching only its own namespace.
//!
//! ```text
//! export WANDB_TEST_KUBECONFIG="$(scripts/cluster.sh up)"
//! cargo test -p wandb-operator --test controller -- --include-ignored --nocapture
//! ```

use std::time::Instant;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use wandb_api::WeightsAndBiases;
use wandb_engine::names;
use wandb_operator::controller;
use wandb_testkit::{TestNamespace, condition_status, wait_for};

mod common;

use common::{TIMEOUT, condition, cr_yaml, fixtures, start, wait_ready};

/// The CR with an external MySQL whose credentials come from the user's Secret `db`.
fn cr_yaml_external_db(name: &str, manifest: &str, version: &str) -> String {
    format!(
        "{}  mysql:\n    default:\n      externalMysql:\n        host: {{name: db, key: host}}\n        \
         database: {{name: db, key: database}}\n        username: {{name: db, key: user}}\n        \
         password: {{name: db, key: password}}\n",
        cr_yaml(name, manifest, version)
    )
}

/// The user's database Secret (what an external MySQL's selectors point at).
async fn create_db_secret(ns: &TestNamespace) {
    let s: Secret = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "stringData": {"host": "db.example.com", "database": "wandb", "user": "wandb",
                       "password": "p@ss:w/rd"}
    }))
    .unwrap();
    ns.api::<Secret>()
        .create(&PostParams::default(), &s)
        .await
        .expect("creating the database Secret");
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn reaches_ready_through_infra_migrations_and_applications() {
    let ns = wandb_testkit::namespace("ctrl-ready").await;
    ns.cluster().require_ready_node().await;
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let jobs: Api<Job> = ns.api();
    let deployments: Api<Deployment> = ns.api();
    let secrets: Api<Secret> = ns.api();
    let name = "wb";
    let t0 = Instant::now();
    ns.apply_yaml(&cr_yaml_external_db(name, &fixtures(), "0.84.0"))
        .await;

    // Infra not ready: the user's database Secret is missing, and InfraReady names it; no
    // migration and no application yet (the managed services are published meanwhile).
    let msg = wait_for(
        "InfraReady=False naming the database Secret",
        TIMEOUT,
        || async {
            Ok(condition(&wb, name, "InfraReady")
                .await
                .filter(|(s, m)| s == "False" && m.contains("Secret db not found"))
                .map(|(_, m)| m))
        },
    )
    .await;
    assert!(msg.contains(&format!("{name}-mysql-connection")), "{msg}");
    let sel = ListParams::default().labels(&format!("{}=migration", names::COMPONENT_LABEL));
    assert!(
        jobs.list(&sel).await.unwrap().items.is_empty(),
        "no migration Job before infra is ready"
    );
    assert!(
        deployments
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "no application before migrations"
    );
    let cr = wb.get(name).await.unwrap();
    assert!(cr.finalizers().iter().any(|f| f == controller::FINALIZER));

    // The generated secret exists already; remember its value.
    let session = wait_for("the generated session key", TIMEOUT, || async {
        Ok(secrets
            .get_opt(&format!("{name}-session-key"))
            .await?
            .and_then(|s| s.data))
    })
    .await;

    // The user creates the database Secret and volumes get bound: the services start,
    // migrations run, then applications.
    create_db_secret(&ns).await;
    let _pv = ns.start_volume_provisioner();
    wait_for("migration Jobs to be created", TIMEOUT, || async {
        let n = jobs.list(&sel).await?.items.len();
        Ok((n > 0).then_some(()))
    })
    .await;
    wait_ready(&wb, name).await;
    let elapsed = t0.elapsed();
    eprintln!("time to Ready (incl. waiting for the database Secret): {elapsed:?}");

    let cr = wb.get(name).await.unwrap();
    let status = cr.status.clone().unwrap();
    assert!(status.ready);
    assert_eq!(status.version.as_deref(), Some("0.84.0"));
    assert_eq!(status.url.as_deref(), Some("http://wb.local"));
    let migration = status.wandb.unwrap().migration.unwrap();
    assert_eq!(migration.last_success_version.as_deref(), Some("0.84.0"));
    assert!(
        status
            .generated_secrets
            .values()
            .any(|sel| sel.name == format!("{name}-session-key")),
        "status records the generated secrets: {:?}",
        status.generated_secrets
    );
    assert!(!status.components.is_empty());
    assert!(status.components.values().all(|c| c.ready));
    let deps = deployments
        .list(&ListParams::default().labels(&format!("{}={name}", names::INSTANCE_LABEL)))
        .await
        .unwrap();
    assert_eq!(deps.items.len(), status.components.len());
    for d in &deps.items {
        let v = serde_json::to_value(d).unwrap();
        assert_eq!(
            condition_status(&v, "Available").as_deref(),
            Some("True"),
            "{}",
            d.name_any()
        );
        let owner = d
            .owner_references()
            .first()
            .cloned()
            .expect("owner reference");
        assert_eq!(owner.uid, cr.uid().unwrap());
        assert_eq!(owner.controller, Some(true));
    }

    // Finished migration Jobs are deleted after the success is recorded, and not re-created.
    wait_for("finished migration Jobs to be deleted", TIMEOUT, || async {
        let left = jobs.list(&sel).await?.items;
        Ok(left
            .iter()
            .all(|j| j.metadata.deletion_timestamp.is_some())
            .then_some(()))
    })
    .await;

    // Poke a reconcile (an annotation does not change the generation): nothing to write, and
    // the generated secret keeps its value.
    let history = common::poke_and_count_writes(&running, &ns, name).await;
    eprintln!("writes per reconcile: {history:?}");
    assert_eq!(
        history.last(),
        Some(&0),
        "a reconcile with no change writes nothing: {history:?}"
    );
    // That reconcile completed: had it re-created a Job, the Job would be listed now.
    assert!(
        jobs.list(&sel).await.unwrap().items.is_empty(),
        "Jobs are not re-created"
    );
    let again = secrets
        .get(&format!("{name}-session-key"))
        .await
        .unwrap()
        .data;
    assert_eq!(
        again,
        Some(session),
        "the generated secret is never overwritten"
    );

    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn repairs_drift_of_deployments() {
    let ns = wandb_testkit::namespace("ctrl-drift").await;
    // Managed services need their volumes bound (kwok has no provisioner).
    let _pv = ns.start_volume_provisioner();
    ns.cluster().require_ready_node().await;
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let deployments: Api<Deployment> = ns.api();
    let name = "wb";
    let ingresses: Api<k8s_openapi::api::networking::v1::Ingress> = ns.api();
    ns.apply_yaml(&format!(
        "{}  networking:\n    mode: ingress\n    ingress: {{ingressClassName: nginx}}\n",
        cr_yaml_external_db(name, &fixtures(), "0.84.0")
    ))
    .await;
    wait_for(
        "InfraReady=False naming the database Secret",
        TIMEOUT,
        || async {
            Ok(condition(&wb, name, "InfraReady")
                .await
                .filter(|(s, m)| s == "False" && m.contains("Secret db not found"))
                .map(|_| ()))
        },
    )
    .await;
    assert!(
        ingresses
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "networking waits for the applications"
    );
    create_db_secret(&ns).await;
    wait_ready(&wb, name).await;
    let ing = ingresses.list(&Default::default()).await.unwrap().items;
    assert_eq!(
        ing.len(),
        1,
        "one Ingress once the applications are applied"
    );
    assert_eq!(
        ing[0].owner_references().first().map(|o| o.uid.clone()),
        wb.get(name).await.unwrap().uid()
    );

    // Deleted: re-created.
    let target = format!("{name}-api");
    let uid = deployments.get(&target).await.unwrap().uid();
    deployments
        .delete(&target, &Default::default())
        .await
        .unwrap();
    wait_for(
        "the deleted Deployment to be re-created",
        TIMEOUT,
        || async {
            Ok(deployments
                .get_opt(&target)
                .await?
                .filter(|d| d.uid() != uid && d.metadata.deletion_timestamp.is_none())
                .map(|_| ()))
        },
    )
    .await;

    // Image edited by someone else: restored.
    let d = deployments.get(&target).await.unwrap();
    let container = d
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .clone();
    let image = container.image.clone().unwrap();
    deployments
        .patch(
            &target,
            &PatchParams::apply("someone-else").force(),
            &Patch::Apply(json!({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": target},
                "spec": {"template": {"spec": {"containers": [
                    {"name": container.name, "image": "example.com/drifted:1"}
                ]}}}
            })),
        )
        .await
        .unwrap();
    wait_for("the image to be restored", TIMEOUT, || async {
        let d = deployments.get(&target).await?;
        let now = d.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .clone();
        Ok((now.as_deref() == Some(image.as_str())).then_some(()))
    })
    .await;
    wait_ready(&wb, name).await;

    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn a_bad_manifest_location_stalls_with_a_condition_and_an_event() {
    let ns = wandb_testkit::namespace("ctrl-badmanifest").await;
    // Managed services need their volumes bound (kwok has no provisioner).
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let name = "wb";
    ns.apply_yaml(&cr_yaml(name, "file:///nonexistent/manifests", "0.84.0"))
        .await;
    let (_, msg) = wait_for("ManifestLoaded=False", TIMEOUT, || async {
        Ok(condition(&wb, name, "ManifestLoaded")
            .await
            .filter(|(s, _)| s == "False"))
    })
    .await;
    assert!(msg.contains("/nonexistent/manifests"), "{msg}");
    let stalled = condition(&wb, name, "Stalled").await.unwrap();
    assert_eq!(stalled.0, "True");
    common::wait_for_event(&ns, "a Warning event for the manifest", |e| {
        e.type_.as_deref() == Some("Warning")
            && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
    })
    .await;
    let deps: Api<Deployment> = ns.api();
    assert!(
        deps.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "nothing else is created"
    );
    running.finish(ns).await;
}

/// Brings `name` to Ready at `version`, publishing the connection Secrets it waits for.
async fn ready_instance(ns: &TestNamespace, name: &str, yaml: &str) {
    let wb: Api<WeightsAndBiases> = ns.api();
    ns.apply_yaml(yaml).await;
    wait_ready(&wb, name).await;
}

fn image_of(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn failed_migration_stops_the_upgrade_and_a_retry_completes_it() {
    let ns = wandb_testkit::namespace("ctrl-upgrade").await;
    // Managed services need their volumes bound (kwok has no provisioner).
    let _pv = ns.start_volume_provisioner();
    ns.cluster().require_ready_node().await;
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let deployments: Api<Deployment> = ns.api();
    let jobs: Api<Job> = ns.api();
    let name = "wb";
    ready_instance(&ns, name, &cr_yaml(name, &fixtures(), "0.79.0")).await;
    let api_image = image_of(&deployments.get(&format!("{name}-api")).await.unwrap());
    assert!(api_image.ends_with(":0.79.0"), "{api_image}");

    // A migration Job of 0.84.0 that fails for real: its pod can never be scheduled and the Job
    // controller fails it at its deadline. It looks like the operator's own Job (labels, owner),
    // which the operator observes from its watch cache (Jobs are never re-applied); marked
    // retained so that 0.79.0, which does not render it, does not prune it first.
    let failing = wandb_engine::job_name(name, "gorilla", "0.84.0");
    let owner = wb
        .get(name)
        .await
        .unwrap()
        .controller_owner_ref(&())
        .unwrap();
    let job: Job = serde_json::from_value(json!({
        "metadata": {
            "name": failing,
            "labels": {names::INSTANCE_LABEL: name, names::MANAGED_BY_LABEL: names::MANAGED_BY},
            "annotations": {names::RETAIN_ANNOTATION: "true"},
            "ownerReferences": [owner],
        },
        "spec": {"activeDeadlineSeconds": 1, "backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"wandb-test/no-such-node": "true"},
            "containers": [{"name": "migrate", "image": "example.com/fails:1"}]
        }}}
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    wait_for("the stand-in Job to fail", TIMEOUT, || async {
        let j = serde_json::to_value(jobs.get(&failing).await?)?;
        Ok((condition_status(&j, "Failed").as_deref() == Some("True")).then_some(()))
    })
    .await;

    wb.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"wandb": {"version": "0.84.0"}}})),
    )
    .await
    .unwrap();
    let (_, msg) = wait_for("Stalled=True", TIMEOUT, || async {
        Ok(condition(&wb, name, "Stalled")
            .await
            .filter(|(s, _)| s == "True"))
    })
    .await;
    assert!(
        msg.contains(&failing) && msg.contains("DeadlineExceeded"),
        "{msg}"
    );
    let cr = wb.get(name).await.unwrap();
    let st = cr.status.unwrap();
    assert!(!st.ready);
    assert_eq!(
        st.version.as_deref(),
        Some("0.79.0"),
        "the old version still runs"
    );
    let stalled = st.conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
    assert_eq!(stalled.reason, "MigrationFailed");
    // A completed reconcile after the failure must leave the applications alone.
    common::poke_and_count_writes(&running, &ns, name).await;
    let still = image_of(&deployments.get(&format!("{name}-api")).await.unwrap());
    assert_eq!(
        still, api_image,
        "applications are untouched while a migration failed"
    );

    // Retry: delete the failed Job; the operator creates the real one, which completes.
    jobs.delete(&failing, &kube::api::DeleteParams::background())
        .await
        .unwrap();
    wait_for("Ready at 0.84.0", TIMEOUT, || async {
        let cr = wb.get(name).await?;
        let s = cr.status.unwrap_or_default();
        Ok((s.ready && s.version.as_deref() == Some("0.84.0")).then_some(()))
    })
    .await;
    let upgraded = image_of(&deployments.get(&format!("{name}-api")).await.unwrap());
    assert!(upgraded.contains(":0.84.0"), "{upgraded}");

    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn delete_detaches_generated_secrets_and_a_new_instance_reuses_them() {
    let ns = wandb_testkit::namespace("ctrl-detach").await;
    // Managed services need their volumes bound (kwok has no provisioner).
    let _pv = ns.start_volume_provisioner();
    ns.cluster().require_ready_node().await;
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let secrets: Api<Secret> = ns.api();
    let name = "wb";
    let key = format!("{name}-session-key");
    ready_instance(&ns, name, &cr_yaml(name, &fixtures(), "0.84.0")).await;
    let before = secrets.get(&key).await.unwrap();

    wb.delete(name, &Default::default()).await.unwrap();
    wait_for("the CR to be gone", TIMEOUT, || async {
        Ok(wb.get_opt(name).await?.is_none().then_some(()))
    })
    .await;
    let kept = secrets
        .get(&key)
        .await
        .expect("the generated secret is kept");
    assert!(
        kept.owner_references().is_empty(),
        "no owner reference, so the garbage collector keeps it"
    );

    // Same name again: the kept secret is used as it is.
    ns.apply_yaml(&cr_yaml(name, &fixtures(), "0.84.0")).await;
    wait_ready(&wb, name).await;
    let after = secrets.get(&key).await.unwrap();
    assert_eq!(
        after.data, before.data,
        "credentials survive a re-created instance"
    );

    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn delete_with_purge_removes_generated_secrets() {
    let ns = wandb_testkit::namespace("ctrl-purge").await;
    // Managed services need their volumes bound (kwok has no provisioner).
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let secrets: Api<Secret> = ns.api();
    let name = "wb";
    let key = format!("{name}-session-key");
    let yaml = format!(
        "{}  retentionPolicy: {{onDelete: purge}}\n",
        cr_yaml(name, &fixtures(), "0.84.0")
    );
    ns.apply_yaml(&yaml).await;
    let s = wait_for("the generated secret", TIMEOUT, || async {
        Ok(secrets.get_opt(&key).await?)
    })
    .await;
    assert_eq!(
        s.owner_references().len(),
        1,
        "purge: owned by the instance"
    );
    wb.delete(name, &Default::default()).await.unwrap();
    wait_for(
        "the CR and its generated secret to be gone",
        TIMEOUT,
        || async {
            let gone = wb.get_opt(name).await?.is_none()
                && secrets
                    .get_opt(&key)
                    .await?
                    .is_none_or(|s| s.metadata.deletion_timestamp.is_some());
            Ok(gone.then_some(()))
        },
    )
    .await;
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn prunes_only_its_own_unrendered_objects_and_copies_the_license() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let ns = wandb_testkit::namespace("ctrl-prune").await;
    // Managed services need their volumes bound (kwok has no provisioner).
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let cms: Api<ConfigMap> = ns.api();
    let secrets: Api<Secret> = ns.api();
    let name = "wb";
    let labels = format!(
        "{{{}: {name}, {}: {}}}",
        names::INSTANCE_LABEL,
        names::MANAGED_BY_LABEL,
        names::MANAGED_BY
    );
    ns.apply_yaml(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: stale, labels: {labels}}}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: kept-retained, labels: {labels}, \
         annotations: {{{}: \"true\"}}}}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: kept-other-instance, labels: \
         {{{}: other, {}: {}}}}}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: kept-unmanaged, labels: {{{}: {name}}}}}\n",
        names::RETAIN_ANNOTATION,
        names::INSTANCE_LABEL,
        names::MANAGED_BY_LABEL,
        names::MANAGED_BY,
        names::INSTANCE_LABEL,
    ))
    .await;
    let yaml = format!(
        "{}    license: first-license\n",
        cr_yaml(name, &fixtures(), "0.84.0")
    );
    ns.apply_yaml(&yaml).await;
    wait_for("the stale ConfigMap to be pruned", TIMEOUT, || async {
        Ok(cms.get_opt("stale").await?.is_none().then_some(()))
    })
    .await;
    for kept in ["kept-retained", "kept-other-instance", "kept-unmanaged"] {
        assert!(
            cms.get_opt(kept).await.unwrap().is_some(),
            "{kept} is not pruned"
        );
    }

    // The license is copied into a Secret and follows the spec.
    let license = |value: &'static str| {
        let secrets = secrets.clone();
        async move {
            let list = secrets
                .list(&ListParams::default().labels(&format!("{}={name}", names::INSTANCE_LABEL)))
                .await?;
            Ok(list
                .items
                .iter()
                .any(|s| {
                    s.data
                        .as_ref()
                        .is_some_and(|d| d.values().any(|v| v.0 == value.as_bytes()))
                })
                .then_some(()))
        }
    };
    wait_for("the license Secret", TIMEOUT, || license("first-license")).await;
    wb.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"wandb": {"license": "second-license"}}})),
    )
    .await
    .unwrap();
    wait_for("the license Secret to follow the spec", TIMEOUT, || {
        license("second-license")
    })
    .await;
    running.finish(ns).await;
}

/// Measures time to Ready and API writes for `WANDB_TEST_INSTANCES` instances (default 3) in one
/// namespace (every backing service managed, connections published by the controller), then checks that a reconcile of a settled
/// instance writes nothing. Each instance runs 13 pods of the 0.84.0 fixture and a kwok node takes
/// 110 pods (backing services and setup Jobs add more): above 5 instances, start the cluster with
/// `WANDB_CLUSTER_NODES=2 scripts/cluster.sh up`.
#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn measures_time_to_ready_and_writes() {
    let n: usize = std::env::var("WANDB_TEST_INSTANCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let ns = wandb_testkit::namespace("ctrl-measure").await;
    // Managed services need their volumes bound (kwok has no provisioner).
    let _pv = ns.start_volume_provisioner();
    ns.cluster().require_ready_node().await;
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let location = fixtures();
    let names: Vec<String> = (0..n).map(|i| format!("wb{i}")).collect();
    let t0 = Instant::now();
    for name in &names {
        ns.apply_yaml(&cr_yaml(name, &location, "0.84.0")).await;
    }
    for name in &names {
        wait_ready(&wb, name).await;
    }
    let elapsed = t0.elapsed();
    eprintln!("{n} instance(s): all Ready after {elapsed:?}");

    // Settled: a poked reconcile writes nothing.
    let name = &names[0];
    let history = common::settle(&running, &ns, name).await;
    eprintln!("{name}: writes per reconcile {history:?}");
    assert_eq!(history.last(), Some(&0));
    let writes = running.ctx.total_writes();
    eprintln!(
        "{n} instance(s): {writes} API writes in total until settled ({} per instance)",
        writes as usize / n
    );
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn api_errors_back_off_with_an_event_and_recover() {
    use k8s_openapi::api::core::v1::ResourceQuota;
    let ns = wandb_testkit::namespace("ctrl-backoff").await;
    ns.cluster().require_ready_node().await;
    // Managed services need their volumes bound (kwok has no provisioner).
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let quotas: Api<ResourceQuota> = ns.api();
    let name = "wb";
    // At most 2 Deployments: applying the applications fails with "exceeded quota".
    ns.apply_yaml(
        "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: few}\nspec: {hard: {count/deployments.apps: \"2\"}}\n",
    )
    .await;
    ns.apply_yaml(&cr_yaml(name, &fixtures(), "0.84.0")).await;
    // A quota is fixed outside the resource: not stalled, retried with backoff, and said in
    // the Ready condition (and its event) in the API server's words, not a debug dump.
    let note = common::wait_for_event(&ns, "a Forbidden event", |e| {
        e.reason.as_deref() == Some("Forbidden") && e.note.is_some()
    })
    .await
    .note
    .unwrap_or_default();
    assert!(note.contains("exceeded quota"), "{note}");
    assert!(note.contains("writing Deployment "), "{note}");
    assert!(
        !note.contains("ErrorResponse") && !note.contains("Status {"),
        "{note}"
    );
    let (ready, message) = condition(&wb, name, "Ready")
        .await
        .expect("a Ready condition");
    assert_eq!(ready, "False");
    assert!(message.contains("exceeded quota"), "{message}");
    assert_eq!(
        condition(&wb, name, "Stalled")
            .await
            .map(|c| c.0)
            .as_deref(),
        Some("False")
    );

    quotas.delete("few", &Default::default()).await.unwrap();
    wait_ready(&wb, name).await;
    running.finish(ns).await;
}
