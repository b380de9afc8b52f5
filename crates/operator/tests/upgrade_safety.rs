//! Upgrade safety on the local control plane: a paused instance is not written to at all, and a
//! version older than one whose migrations ran is refused (the running version keeps serving)
//! until a restore is acknowledged.

mod common;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use wandb_api::WeightsAndBiases;
use wandb_testkit::wait_for;

use common::{TIMEOUT, condition, cr_yaml, fixtures, start, wait_ready};

async fn annotate(wb: &Api<WeightsAndBiases>, name: &str, key: &str, value: Option<&str>) {
    wb.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"annotations": {key: value}}})),
    )
    .await
    .unwrap();
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn a_paused_instance_is_not_written_until_resumed() {
    let ns = wandb_testkit::namespace("pause").await;
    ns.cluster().require_ready_node().await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let name = "w";
    ns.apply_yaml(&cr_yaml(name, "builtin://", "0.84.0")).await;
    wait_ready(&wb, name).await;
    common::settle(&running, &ns, name).await;

    annotate(&wb, name, "apps.wandb.com/paused", Some("true")).await;
    wait_for("Paused=True", TIMEOUT, || async {
        Ok(condition(&wb, name, "Paused")
            .await
            .filter(|(s, _)| s == "True"))
    })
    .await;
    // The pass that wrote the Paused condition is recorded once it returns: wait for a later one.
    common::settle(&running, &ns, name).await;
    // A change to the resource and drift in the cluster: each triggers a reconcile that writes
    // nothing.
    let before = running.ctx.write_history(ns.name(), name).len();
    wb.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"wandb": {"serviceAccount": {
            "annotations": {"example.com/role": "r"}}}}})),
    )
    .await
    .unwrap();
    // Each trigger is waited for on its own: two close together may be one reconcile.
    let after_edit = wait_for("a reconcile after the edit", TIMEOUT, || async {
        let h = running.ctx.write_history(ns.name(), name);
        Ok((h.len() > before).then_some(h.len()))
    })
    .await;
    let deployments: Api<Deployment> = ns.api();
    let app = deployments
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={name}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .next()
        .expect("an application Deployment")
        .name_any();
    deployments
        .patch(
            &app,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 7}})),
        )
        .await
        .unwrap();
    let history = wait_for("a reconcile after the drift", TIMEOUT, || async {
        let h = running.ctx.write_history(ns.name(), name);
        Ok((h.len() > after_edit).then_some(h))
    })
    .await;
    assert!(
        history[before..].iter().all(|w| *w == 0),
        "writes while paused: {history:?}"
    );
    let sa: Api<ServiceAccount> = ns.api();
    let sa_annotated = |sa: &ServiceAccount| sa.annotations().contains_key("example.com/role");
    let accounts = sa
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={name}")))
        .await
        .unwrap();
    assert!(!accounts.items.iter().any(sa_annotated));
    assert_eq!(
        deployments.get(&app).await.unwrap().spec.unwrap().replicas,
        Some(7),
        "drift is not repaired while paused"
    );

    // Resumed: both are acted on, and the condition goes.
    annotate(&wb, name, "apps.wandb.com/paused", None).await;
    wait_for(
        "the change and the repair after resuming",
        TIMEOUT,
        || async {
            let accounts = sa
                .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={name}")))
                .await?;
            let replicas = deployments.get(&app).await?.spec.and_then(|s| s.replicas);
            Ok((accounts.items.iter().any(sa_annotated) && replicas != Some(7)).then_some(()))
        },
    )
    .await;
    wait_ready(&wb, name).await;
    assert!(condition(&wb, name, "Paused").await.is_none());
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn a_downgrade_is_refused_until_a_restore_is_acknowledged() {
    let ns = wandb_testkit::namespace("downgrade").await;
    ns.cluster().require_ready_node().await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let name = "w";
    ns.apply_yaml(&cr_yaml(name, &fixtures(), "0.84.0")).await;
    wait_ready(&wb, name).await;
    let at_084 = common::deployment_images(&ns, name).await;

    ns.apply_yaml(&cr_yaml(name, &fixtures(), "0.79.0")).await;
    let message = wait_for("Stalled=True DowngradeRefused", TIMEOUT, || async {
        let cr = wb.get(name).await?;
        Ok(cr
            .status
            .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Stalled"))
            .filter(|c| c.status == "True" && c.reason == "DowngradeRefused")
            .map(|c| c.message))
    })
    .await;
    assert!(
        message.contains("0.79.0") && message.contains("apps.wandb.com/restored-version"),
        "{message}"
    );
    assert_eq!(
        common::deployment_images(&ns, name).await,
        at_084,
        "0.84.0 keeps serving"
    );

    annotate(&wb, name, "apps.wandb.com/restored-version", Some("0.79.0")).await;
    wait_for("Ready at 0.79.0", TIMEOUT, || async {
        let cr = wb.get(name).await?;
        Ok(cr
            .status
            .filter(|s| s.ready && s.version.as_deref() == Some("0.79.0"))
            .map(|_| ()))
    })
    .await;
    assert_ne!(
        common::deployment_images(&ns, name).await,
        at_084,
        "0.79.0 rolled out"
    );
    running.finish(ns).await;
}
