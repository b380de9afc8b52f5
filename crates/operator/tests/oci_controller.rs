//! The controller with `oci://` manifests from a local registry: an instance reaches Ready; an
//! auth registry needs a dockerconfigjson Secret in `spec.global.imagePullSecrets` (without it
//! the instance is Stalled with ManifestUnavailable naming the reference).

mod common;

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use wandb_api::WeightsAndBiases;
use wandb_operator::controller::Context;
use wandb_operator::manifests::OciLoader;
use wandb_testkit::registry::Registry;
use wandb_testkit::{TestNamespace, wait_for};

use common::oci::{self, REPO};
use common::{TIMEOUT, condition, cr_yaml, wait_ready};

async fn start(ns: &TestNamespace, reg: &Registry) -> common::Running {
    let mut ctx = Context::new(ns.client());
    ctx.oci = OciLoader::new(vec![reg.host().to_string()]);
    common::start_with(ns, vec![ns.name().to_string()], ctx).await
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn an_instance_with_an_oci_manifest_becomes_ready() {
    let reg = Registry::start();
    oci::push(
        reg.host(),
        Some("0.84.0"),
        &[oci::tar_gz_layer(&oci::fixture_files())],
        None,
    )
    .await;
    let ns = wandb_testkit::namespace("oci-ready").await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns, &reg).await;
    let location = format!("oci://{}/{REPO}", reg.host());
    ns.apply_yaml(&cr_yaml("w", &location, "0.84.0")).await;
    wait_ready(&ns.api(), "w").await;
    running.finish(ns).await;
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn an_auth_registry_needs_an_image_pull_secret() {
    let reg = Registry::start_with_auth("puller", "s3cret-pw");
    oci::push(
        reg.host(),
        Some("0.84.0"),
        &oci::yaml_layers(&oci::fixture_files()),
        Some(("puller", "s3cret-pw")),
    )
    .await;
    let ns = wandb_testkit::namespace("oci-auth").await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns, &reg).await;
    let location = format!("oci://{}/{REPO}", reg.host());
    ns.apply_yaml(&cr_yaml("w", &location, "0.84.0")).await;

    let wb: Api<WeightsAndBiases> = ns.api();
    let (_, msg) = wait_for("Stalled=True", TIMEOUT, || async {
        Ok(condition(&wb, "w", "Stalled")
            .await
            .filter(|(s, _)| s == "True"))
    })
    .await;
    let status = wb.get("w").await.unwrap().status.unwrap();
    let stalled = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(stalled.reason, "ManifestUnavailable");
    assert!(
        msg.contains(&format!("{location}:0.84.0")) && msg.contains("401"),
        "{msg}"
    );

    // The pull secret, keyed in the `https://host` form, is used once the CR names it.
    let config = json!({"auths": {format!("https://{}", reg.host()): {"username": "puller", "password": "s3cret-pw"}}});
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("regcred".into()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        data: Some(BTreeMap::from([(
            ".dockerconfigjson".to_string(),
            ByteString(serde_json::to_vec(&config).unwrap()),
        )])),
        ..Default::default()
    };
    let secrets: Api<Secret> = ns.api();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    wb.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"global": {"imagePullSecrets": [{"name": "regcred"}]}}})),
    )
    .await
    .unwrap();
    wait_ready(&wb, "w").await;
    let status = serde_json::to_string(&wb.get("w").await.unwrap().status).unwrap();
    assert!(!status.contains("s3cret-pw"), "no credential in the status");
    running.finish(ns).await;
}
