//! Retention of data several instances share, on the local control plane.

mod common;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use wandb_api::WeightsAndBiases;
use wandb_engine::names;
use wandb_testkit::wait_for;

use common::{TIMEOUT, cr_yaml, fixtures, start, wait_ready};

/// The 0.84.0 manifest's `weave-worker-auth` is `useExactName`: one Secret for the namespace.
const SHARED: &str = "weave-worker-auth";

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn purging_one_instance_keeps_a_secret_another_instance_uses() {
    let ns = wandb_testkit::namespace("retention-shared").await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let secrets: Api<Secret> = ns.api();
    let purge = cr_yaml("first", &fixtures(), "0.84.0") + "  retentionPolicy: {onDelete: purge}\n";
    ns.apply_yaml(&purge).await;
    wait_ready(&wb, "first").await;
    ns.apply_yaml(&cr_yaml("second", &fixtures(), "0.84.0"))
        .await;
    wait_ready(&wb, "second").await;
    let before = secrets.get(SHARED).await.unwrap();
    assert_eq!(
        before.metadata.annotations.as_ref().unwrap()[names::SHARED_ANNOTATION],
        "true"
    );
    assert!(
        before
            .metadata
            .owner_references
            .clone()
            .unwrap_or_default()
            .is_empty(),
        "a shared Secret is owned by no instance"
    );

    wb.delete("first", &Default::default()).await.unwrap();
    wait_for("first to be gone", TIMEOUT, || async {
        Ok(wb.get_opt("first").await?.is_none().then_some(()))
    })
    .await;
    // Its own generated data is purged; the shared Secret stays, unchanged, handed to `second`.
    wait_for("first's own credentials to be purged", TIMEOUT, || async {
        Ok(secrets
            .get_opt("first-mysql-credentials")
            .await?
            .is_none()
            .then_some(()))
    })
    .await;
    let after = secrets
        .get(SHARED)
        .await
        .expect("the shared Secret is kept");
    assert_eq!(after.data, before.data, "its value is unchanged");
    assert_eq!(
        after.metadata.labels.as_ref().unwrap()[names::INSTANCE_LABEL],
        "second"
    );
    wait_ready(&wb, "second").await;
    running.finish(ns).await;
}
