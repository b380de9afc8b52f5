//! Helpers shared by the operator's integration tests: the CRD, an in-process controller, and
//! condition lookups.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, CustomResourceExt, ResourceExt};
use tokio::sync::oneshot;
use wandb_api::WeightsAndBiases;
use wandb_operator::controller::{self, Context};
use wandb_testkit::{TestNamespace, condition_status, wait_for};

pub const TIMEOUT: Duration = Duration::from_secs(120);

/// Applies the CRD (server-side) and waits until it is Established.
pub async fn install_crd(client: &kube::Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = WeightsAndBiases::crd();
    api.patch(
        &crd.name_any(),
        &PatchParams::apply("wandb-operator-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("applying the CRD");
    wait_for("the CRD to be Established", TIMEOUT, || async {
        let v = serde_json::to_value(api.get(&crd.name_any()).await?)?;
        Ok((condition_status(&v, "Established").as_deref() == Some("True")).then_some(()))
    })
    .await;
}

/// The controller running in-process for one namespace.
pub struct Running {
    pub ctx: Arc<Context>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

pub async fn start(ns: &TestNamespace) -> Running {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
    install_crd(&ns.client()).await;
    let ctx = Arc::new(Context::new(ns.client()));
    let (tx, rx) = oneshot::channel::<()>();
    let shutdown = controller::shutdown_on(async move {
        let _ = rx.await;
    });
    let namespaces = vec![ns.name().to_string()];
    let c = ctx.clone();
    let task = tokio::spawn(async move { controller::run(c, &namespaces, 4, shutdown).await });
    Running {
        ctx,
        stop: Some(tx),
        task,
    }
}

impl Running {
    /// Deletes every instance while the controller runs (its finalizer needs it), then stops.
    pub async fn finish(mut self, ns: TestNamespace) {
        let wb: Api<WeightsAndBiases> = ns.api();
        wb.delete_collection(&Default::default(), &Default::default())
            .await
            .expect("delete instances");
        wait_for("every WeightsAndBiases to be gone", TIMEOUT, || async {
            Ok(wb
                .list(&Default::default())
                .await?
                .items
                .is_empty()
                .then_some(()))
        })
        .await;
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("the controller stops within 30s")
            .expect("the controller task does not panic");
        ns.cleanup().await;
    }
}

/// (status, message) of condition `t` of instance `name`.
pub async fn condition(
    api: &Api<WeightsAndBiases>,
    name: &str,
    t: &str,
) -> Option<(String, String)> {
    let cr = api.get(name).await.ok()?;
    let c = cr.status?.conditions.into_iter().find(|c| c.type_ == t)?;
    Some((c.status, c.message))
}
