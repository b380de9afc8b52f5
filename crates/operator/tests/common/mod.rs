//! Helpers shared by the operator's integration tests: the CRD, an in-process controller, and
//! condition lookups.
#![allow(dead_code)]

pub mod day2;
pub mod keys;
pub mod oci;
pub mod predecessor;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use tokio::sync::oneshot;
use wandb_api::WeightsAndBiases;
use wandb_operator::controller::{self, Context};
use wandb_testkit::{TestNamespace, condition_status, wait_for};

pub const TIMEOUT: Duration = Duration::from_secs(120);

/// Applies the shipped CRD (server-side) and waits until it is Established. Its conversion
/// block is left out: the tests' field manager must not own (and reset) the clientConfig that
/// the conversion test's webhook points at itself; v2-only tests never call a webhook.
pub async fn install_crd(client: &kube::Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut crd = wandb_api::crd();
    crd.spec.conversion = None;
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
    start_for(ns, vec![ns.name().to_string()]).await
}

/// The controller watching `namespaces` (`ns` gives the client).
pub async fn start_for(ns: &TestNamespace, namespaces: Vec<String>) -> Running {
    let mut ctx = Context::new(ns.client());
    ctx.anonymous = Some(Context::anonymous_client(ns.cluster().config()).unwrap());
    start_with(ns, namespaces, ctx).await
}

/// The controller with a prepared context (e.g. shorter retry intervals). `RUST_LOG` shows its
/// logs.
pub async fn start_with(ns: &TestNamespace, namespaces: Vec<String>, ctx: Context) -> Running {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
    install_crd(&ns.client()).await;
    let ctx = Arc::new(ctx);
    let (tx, rx) = oneshot::channel::<()>();
    let shutdown = controller::shutdown_on(async move {
        let _ = rx.await;
    });
    let c = ctx.clone();
    let task = tokio::spawn(async move { controller::run(c, &namespaces, 4, shutdown).await });
    Running {
        ctx,
        stop: Some(tx),
        task,
    }
}

impl Running {
    /// Stops the controller gracefully (in-flight reconciles finish), leaving every object.
    pub async fn stop(mut self) {
        self.halt().await;
    }

    async fn halt(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("the controller stops within 30s")
            .expect("the controller task does not panic");
    }

    /// Deletes every instance while the controller runs (its finalizer needs it), then stops.
    pub async fn finish(self, ns: TestNamespace) {
        finish_all(self, vec![ns]).await;
    }
}

/// [`Running::finish`] for several namespaces.
pub async fn finish_all(mut running: Running, namespaces: Vec<TestNamespace>) {
    for ns in &namespaces {
        let wb: Api<WeightsAndBiases> = ns.api();
        wb.delete_collection(&Default::default(), &Default::default())
            .await
            .expect("delete instances");
    }
    for ns in &namespaces {
        let wb: Api<WeightsAndBiases> = ns.api();
        wait_for("every WeightsAndBiases to be gone", TIMEOUT, || async {
            Ok(wb
                .list(&Default::default())
                .await?
                .items
                .is_empty()
                .then_some(()))
        })
        .await;
    }
    running.halt().await;
    for ns in namespaces {
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

/// `file://` URL of the shared fixture manifests (0.79.0, 0.84.0).
pub fn fixtures() -> String {
    let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/server-manifest");
    let p = p
        .canonicalize()
        .unwrap_or_else(|e| panic!("fixtures at {}: {e}", p.display()));
    format!("file://{}", p.display())
}

/// A minimal instance of `version` from `manifest`, every backing service managed.
pub fn cr_yaml(name: &str, manifest: &str, version: &str) -> String {
    format!(
        "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {{name: {name}}}\n\
         spec:\n  size: dev\n  wandb:\n    hostname: http://{name}.local\n    version: \"{version}\"\n    \
         manifestRepository: {manifest}\n"
    )
}

/// Waits until instance `name` is Ready, then checks that every Secret and ConfigMap key its
/// pods read exists (Ready must mean a kubelet would start them: [`keys`]).
pub async fn wait_ready(api: &Api<WeightsAndBiases>, name: &str) {
    let cr = wait_for("the CR to become Ready", TIMEOUT, || async {
        let ready = condition(api, name, "Ready")
            .await
            .is_some_and(|(s, _)| s == "True");
        Ok(if ready {
            Some(api.get(name).await?)
        } else {
            None
        })
    })
    .await;
    keys::assert_pod_keys_exist(&api.clone().into_client(), &cr).await;
}

/// Triggers one reconcile of `name` without changing its spec (an annotation) and returns the
/// write counts of its reconciles since start, the poked one last.
pub async fn poke_and_count_writes(
    running: &Running,
    ns: &TestNamespace,
    name: &str,
) -> Vec<usize> {
    let wb: Api<WeightsAndBiases> = ns.api();
    let before = running.ctx.write_history(ns.name(), name).len();
    wb.patch(
        name,
        &PatchParams::default(),
        // A new value each time: an unchanged annotation would be no change, and no reconcile.
        &Patch::Merge(serde_json::json!({"metadata": {"annotations": {
            "test/poke": wandb_testkit::random_suffix(12)
        }}})),
    )
    .await
    .unwrap();
    wait_for("a reconcile after the poke", TIMEOUT, || async {
        let h = running.ctx.write_history(ns.name(), name);
        Ok((h.len() > before).then_some(h))
    })
    .await
}

/// Pokes reconciles of `name` until one writes nothing (at most 5: an instance that just became
/// Ready may still record a status or delete finished Jobs), and returns the write history.
/// Fails when the instance never settles.
pub async fn settle(running: &Running, ns: &TestNamespace, name: &str) -> Vec<usize> {
    let mut history = Vec::new();
    for _ in 0..5 {
        history = poke_and_count_writes(running, ns, name).await;
        if history.last() == Some(&0) {
            return history;
        }
    }
    panic!("{name} never settled: writes per reconcile {history:?}");
}

/// Creates Secret `name` holding `fields` (as `stringData`).
pub async fn create_secret(
    secrets: &Api<k8s_openapi::api::core::v1::Secret>,
    name: &str,
    fields: &[(&str, &str)],
) {
    let secret = k8s_openapi::api::core::v1::Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        string_data: Some(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        ),
        ..Default::default()
    };
    secrets
        .create(&Default::default(), &secret)
        .await
        .unwrap_or_else(|e| panic!("creating Secret {name}: {e}"));
}

/// The decoded data of a Secret.
pub fn secret_data(
    s: &k8s_openapi::api::core::v1::Secret,
) -> std::collections::BTreeMap<String, String> {
    s.data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).expect("UTF-8 Secret data")))
        .collect()
}

/// Waits for an event in `ns` that `matches`, and returns it.
pub async fn wait_for_event(
    ns: &TestNamespace,
    what: &str,
    matches: impl Fn(&k8s_openapi::api::events::v1::Event) -> bool,
) -> k8s_openapi::api::events::v1::Event {
    let events: Api<k8s_openapi::api::events::v1::Event> = ns.api();
    let (events, matches) = (&events, &matches);
    wait_for(what, TIMEOUT, || async move {
        Ok(events
            .list(&Default::default())
            .await?
            .items
            .into_iter()
            .find(|e| matches(e)))
    })
    .await
}

/// Images of the instance's Deployments, by name.
pub async fn deployment_images(
    ns: &TestNamespace,
    name: &str,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = ns.api();
    deployments
        .list(
            &kube::api::ListParams::default().labels(&format!("app.kubernetes.io/instance={name}")),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|d| {
            let images = d
                .spec
                .and_then(|s| s.template.spec)
                .map(|p| p.containers.into_iter().filter_map(|c| c.image).collect())
                .unwrap_or_default();
            (d.metadata.name.unwrap_or_default(), images)
        })
        .collect()
}

/// Serves the conversion webhook on a fresh 127.0.0.1 port and points the CRD at it.
pub async fn serve_webhook(
    client: &kube::Client,
    namespace: &str,
    secret_name: &str,
    policy: wandb_operator::webhook::Policy,
) -> wandb_operator::webhook::Webhook {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    wandb_operator::webhook::start(
        client.clone(),
        listener,
        wandb_operator::webhook::Options {
            endpoint: wandb_operator::webhook::Endpoint::Url(format!(
                "https://127.0.0.1:{port}/convert"
            )),
            secret_namespace: namespace.to_string(),
            secret_name: secret_name.into(),
            policy,
            check_every: Duration::from_millis(300),
        },
    )
    .await
    .expect("the webhook starts")
}

/// `apps.wandb.com/v1` WeightsAndBiases, for dynamic requests as v1.
pub fn v1_resource() -> kube::api::ApiResource {
    kube::api::ApiResource {
        group: "apps.wandb.com".into(),
        version: "v1".into(),
        api_version: "apps.wandb.com/v1".into(),
        kind: "WeightsAndBiases".into(),
        plural: "weightsandbiases".into(),
    }
}
