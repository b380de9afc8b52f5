//! The CRD's conversion webhook, served by the operator itself over HTTPS: no cert-manager.
//!
//! At start the operator loads (or creates) its certificates from a Secret, serves
//! `POST /convert`, and points the CRD's `spec.conversion.webhook.clientConfig` at itself (a
//! Service in the cluster, or a URL) with the CA as `caBundle`. A maintenance pass every
//! `check_every` renews certificates ([`certs::next`]), hot-swaps the served one, and puts the
//! CRD's clientConfig back if something else (an older CRD applied by hand) changed it. Every
//! replica runs it; writes to the Secret use its resourceVersion, so two replicas never both
//! rotate.

pub mod certs;
pub mod review;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use certs::CertState;
pub use certs::Policy;
use tls::{CertSlot, TlsListener};

/// The CRD whose conversion is served.
pub const CRD_NAME: &str = "weightsandbiases.apps.wandb.com";

/// How the API server reaches the webhook.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// `https://<name>.<namespace>.svc:<port>/convert`, through a Service (the chart's).
    Service {
        namespace: String,
        name: String,
        port: i32,
    },
    /// A URL, e.g. `https://127.0.0.1:9443/convert` for a local control plane.
    Url(String),
}

impl Endpoint {
    /// The names the serving certificate must carry.
    fn cert_names(&self) -> String {
        match self {
            Endpoint::Service {
                namespace, name, ..
            } => format!("{name}.{namespace}.svc,{name}.{namespace}.svc.cluster.local"),
            Endpoint::Url(u) => {
                let rest = u.split_once("://").map_or(u.as_str(), |(_, r)| r);
                let authority = rest.split('/').next().unwrap_or_default();
                let host = match authority.strip_prefix('[') {
                    Some(v6) => v6.split(']').next().unwrap_or_default(),
                    None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
                };
                host.to_owned()
            }
        }
    }

    fn client_config(&self, ca_bundle: &str) -> Value {
        let ca = base64::engine::general_purpose::STANDARD.encode(ca_bundle);
        match self {
            Endpoint::Service {
                namespace,
                name,
                port,
            } => json!({
                "service": {"namespace": namespace, "name": name, "path": wandb_api::CONVERSION_PATH, "port": port},
                "url": null,
                "caBundle": ca,
            }),
            Endpoint::Url(u) => json!({"url": u, "service": null, "caBundle": ca}),
        }
    }
}

/// Webhook settings (`run --webhook-*`).
#[derive(Clone, Debug)]
pub struct Options {
    pub endpoint: Endpoint,
    /// Namespace and name of the certificate Secret.
    pub secret_namespace: String,
    pub secret_name: String,
    pub policy: Policy,
    pub check_every: Duration,
}

/// A running webhook.
pub struct Webhook {
    pub local_addr: std::net::SocketAddr,
    pub slot: Arc<CertSlot>,
    /// ConversionReviews answered (the API server switches to a new converter a moment after
    /// the CRD changes; this shows when it calls us).
    pub reviews: Arc<std::sync::atomic::AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Loads or creates the certificates, serves on `listener`, points the CRD at it and keeps
/// both current. Returns once the CRD points at a serving webhook.
pub async fn start(
    client: kube::Client,
    listener: TcpListener,
    opts: Options,
) -> Result<Webhook, String> {
    let names = opts.endpoint.cert_names();
    let state = load_or_create(&client, &opts, &names).await?;
    let slot = CertSlot::new(&state.tls_pem, &state.tls_key_pem)?;
    let local_addr = listener.local_addr().map_err(|e| e.to_string())?;
    let tls = TlsListener::new(listener, slot.clone())?;
    let reviews = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let router = Router::new()
        .route(wandb_api::CONVERSION_PATH, post(review::handle))
        .with_state(review::Shared {
            client: client.clone(),
            reviews: reviews.clone(),
        });
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(tls, router).await {
            tracing::error!(error = %e, "conversion webhook server failed");
        }
    });
    point_crd(&client, &opts.endpoint, &state.bundle()).await?;
    tracing::info!(%local_addr, endpoint = ?opts.endpoint, "conversion webhook serving");
    let maintain = {
        let (client, slot, opts) = (client.clone(), slot.clone(), opts.clone());
        tokio::spawn(async move {
            let mut served = state.tls_pem.clone();
            loop {
                tokio::time::sleep(opts.check_every).await;
                match maintain(&client, &opts, &names, &slot, &served).await {
                    Ok(s) => served = s,
                    Err(e) => {
                        tracing::warn!(error = %e, "webhook certificate maintenance failed; retrying")
                    }
                }
            }
        })
    };
    Ok(Webhook {
        local_addr,
        slot,
        reviews,
        tasks: vec![server, maintain],
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

fn data_of(s: &Secret) -> std::collections::BTreeMap<String, String> {
    s.data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect()
}

fn secret_of(opts: &Options, state: &CertState, resource_version: Option<String>) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(opts.secret_name.clone()),
            namespace: Some(opts.secret_namespace.clone()),
            labels: Some(
                [
                    ("app.kubernetes.io/managed-by", "wandb-operator"),
                    ("app.kubernetes.io/component", "webhook-certificate"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ),
            resource_version,
            ..Default::default()
        },
        data: Some(
            state
                .to_data()
                .into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

async fn load_or_create(
    client: &kube::Client,
    opts: &Options,
    names: &str,
) -> Result<CertState, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &opts.secret_namespace);
    for _ in 0..3 {
        let existing = api
            .get_opt(&opts.secret_name)
            .await
            .map_err(|e| format!("reading Secret {}: {e}", opts.secret_name))?;
        if let Some(s) = &existing
            && let Some(state) = CertState::from_data(&data_of(s))
        {
            return Ok(state);
        }
        let state = certs::fresh(names, now(), &opts.policy).map_err(|e| e.to_string())?;
        let secret = secret_of(opts, &state, None);
        let written = match existing {
            // Present but unusable (edited by hand): replaced, guarded by its version.
            Some(s) => {
                let mut replacement = secret;
                replacement.metadata.resource_version = s.resource_version();
                api.replace(&opts.secret_name, &PostParams::default(), &replacement)
                    .await
            }
            None => api.create(&PostParams::default(), &secret).await,
        };
        match written {
            Ok(_) => return Ok(state),
            // Another replica won the race: use its certificates.
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(format!("writing Secret {}: {e}", opts.secret_name)),
        }
    }
    Err(format!(
        "Secret {} keeps changing under us",
        opts.secret_name
    ))
}

/// One pass: renew when due, serve the Secret's certificate, keep the CRD pointed at us.
/// Returns the certificate now served.
async fn maintain(
    client: &kube::Client,
    opts: &Options,
    names: &str,
    slot: &CertSlot,
    served: &str,
) -> Result<String, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &opts.secret_namespace);
    let Some(secret) = api
        .get_opt(&opts.secret_name)
        .await
        .map_err(|e| e.to_string())?
    else {
        // Deleted: start over (a new CA; the CRD is re-pointed below).
        let state = load_or_create(client, opts, names).await?;
        return finish(client, opts, slot, served, &state).await;
    };
    let Some(mut state) = CertState::from_data(&data_of(&secret)) else {
        let state = load_or_create(client, opts, names).await?;
        return finish(client, opts, slot, served, &state).await;
    };
    if let Some(next) =
        certs::next(&state, names, now(), &opts.policy).map_err(|e| e.to_string())?
    {
        match api
            .replace(
                &opts.secret_name,
                &PostParams::default(),
                &secret_of(opts, &next, secret.resource_version()),
            )
            .await
        {
            Ok(_) => {
                tracing::info!(ca = %next.ca_name, "webhook certificates rotated");
                state = next;
            }
            // Another replica rotated first; the next pass reads its result.
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    finish(client, opts, slot, served, &state).await
}

/// The CRD's bundle first (so it trusts what we are about to serve), then the served cert.
async fn finish(
    client: &kube::Client,
    opts: &Options,
    slot: &CertSlot,
    served: &str,
    state: &CertState,
) -> Result<String, String> {
    point_crd(client, &opts.endpoint, &state.bundle()).await?;
    if state.tls_pem != served {
        slot.set(&state.tls_pem, &state.tls_key_pem)?;
    }
    Ok(state.tls_pem.clone())
}

/// Sets the CRD's conversion to this webhook (a merge patch, only when it differs: the other
/// of service/url is removed explicitly, which an apply could not do for another manager's field).
pub async fn point_crd(
    client: &kube::Client,
    endpoint: &Endpoint,
    ca_bundle: &str,
) -> Result<(), String> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = api
        .get(CRD_NAME)
        .await
        .map_err(|e| format!("reading CRD {CRD_NAME}: {e}"))?;
    let mut want = endpoint.client_config(ca_bundle);
    let live = crd
        .spec
        .conversion
        .as_ref()
        .filter(|c| c.strategy == "Webhook")
        .and_then(|c| c.webhook.as_ref())
        .and_then(|w| w.client_config.as_ref())
        .map(|c| serde_json::to_value(c).unwrap_or_default());
    // Compare without the explicit nulls of the patch.
    let wanted_plain: Value = match &mut want {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    };
    if live.as_ref() == Some(&wanted_plain) {
        return Ok(());
    }
    let patch = json!({"spec": {"conversion": {
        "strategy": "Webhook",
        "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": want},
    }}});
    api.patch(
        &crd.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(|e| format!("pointing CRD {CRD_NAME} at the webhook: {e}"))?;
    Ok(())
}
