//! `run`: the controller process, with health and metrics endpoints and optional leader
//! election. Flags match the Helm chart's (charts/wandb-operator/values.yaml).

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use futures::FutureExt as _;
use wandb_operator::admin::{self, Health};
use wandb_operator::controller::{self, Context};
use wandb_operator::leader::Election;
use wandb_operator::manifests::OciLoader;
use wandb_operator::webhook;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args)]
pub struct RunArgs {
    /// Watch only these namespaces (repeatable or comma-separated). Default: every namespace.
    #[arg(
        short = 'n',
        long = "namespace",
        alias = "namespaces",
        value_delimiter = ',',
        env = "WANDB_OPERATOR_NAMESPACES"
    )]
    pub namespaces: Vec<String>,
    /// Maximum number of WeightsAndBiases reconciled at the same time.
    #[arg(long, default_value_t = 4)]
    pub concurrency: u16,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "WANDB_OPERATOR_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Log level (`error`, `warn`, `info`, `debug`, `trace`); RUST_LOG, when set, wins.
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// Export traces over OTLP/HTTP to this collector (e.g. `http://otel-collector:4318`).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// `host:port` or `:port` for /metrics; `0` disables.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub metrics_bind_address: String,
    /// `host:port` or `:port` for /livez and /readyz; `0` disables.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub health_probe_bind_address: String,
    /// Reconcile only while holding the leader Lease (for several replicas).
    #[arg(long)]
    pub leader_elect: bool,
    /// Namespace of the leader Lease (default: POD_NAMESPACE, else `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Name of the leader Lease.
    #[arg(long, default_value = "wandb-operator-leader")]
    pub leader_election_id: String,
    /// Registries (`host:port`) whose `oci://` manifests are pulled over plain HTTP instead of
    /// HTTPS (comma-separated). Only for registries inside a trusted network.
    #[arg(
        long,
        value_delimiter = ',',
        env = "WANDB_OPERATOR_INSECURE_REGISTRIES"
    )]
    pub insecure_registries: Vec<String>,
    /// Manifest location for instances that leave `spec.wandb.manifestRepository` unset:
    /// `builtin://`, `file://DIR` or `oci://REPOSITORY`. Unset: as the official operator,
    /// `oci://<spec.global.imageRegistry or us-docker.pkg.dev/wandb-production/public>/wandb/server-manifest`.
    #[arg(long, env = "WANDB_OPERATOR_DEFAULT_MANIFEST_REPOSITORY")]
    pub default_manifest_repository: Option<String>,
    /// `host:port` or `:port` where the CRD's conversion webhook (apps.wandb.com/v1 <-> v2) is
    /// served over HTTPS; `0` (default) serves none, and v1 requests fail.
    #[arg(long, default_value = "0")]
    pub webhook_bind_address: String,
    /// URL the API server calls the webhook at (e.g. `https://127.0.0.1:9443/convert` for a
    /// local control plane). Default: the Service `--webhook-service` in POD_NAMESPACE.
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// The Service in front of the webhook (the chart's `<release>-webhook`).
    #[arg(long, default_value = wandb_api::WEBHOOK_SERVICE_NAME)]
    pub webhook_service: String,
    /// The Service's port.
    #[arg(long, default_value_t = 443)]
    pub webhook_service_port: i32,
    /// Secret (in POD_NAMESPACE) holding the webhook's CA and serving certificate.
    #[arg(long, default_value = "wandb-operator-webhook-cert")]
    pub webhook_secret: String,
}

pub fn run(args: &RunArgs) -> ExitCode {
    let telemetry = match wandb_operator::telemetry::init(
        matches!(args.log_format, LogFormat::Json),
        &args.log_level,
        args.otlp_endpoint.as_deref(),
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("wandb-operator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "could not start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(async {
        match serve(args).await {
            Ok(code) => code,
            Err(e) => {
                tracing::error!(error = %e, "wandb-operator cannot run");
                ExitCode::FAILURE
            }
        }
    });
    telemetry.shutdown();
    code
}

async fn serve(args: &RunArgs) -> Result<ExitCode, String> {
    // A typo here would stall every instance without a manifestRepository: refuse to start.
    if let Some(l) = &args.default_manifest_repository {
        wandb_manifest::ManifestLocation::parse(l)
            .map_err(|e| format!("--default-manifest-repository: {e}"))?;
    }
    let metrics_addr = admin::parse_bind(&args.metrics_bind_address)?;
    let health_addr = admin::parse_bind(&args.health_probe_bind_address)?;
    let webhook_addr = admin::parse_bind(&args.webhook_bind_address)?;
    // kube is built with rustls + aws-lc-rs only, so rustls picks that provider by itself.
    let config = kube::Config::infer()
        .await
        .map_err(|e| format!("no Kubernetes client configuration: {e}"))?;
    let client =
        kube::Client::try_from(config.clone()).map_err(|e| format!("no Kubernetes client: {e}"))?;
    let mut ctx = Context::new(client);
    // From here on every request goes through the context's counted client.
    let client = ctx.client.clone();
    ctx.anonymous = Some(
        Context::anonymous_client(&config)
            .map_err(|e| format!("no Kubernetes client without credentials: {e}"))?,
    );
    ctx.oci = OciLoader::new(args.insecure_registries.clone());
    ctx.default_manifest = args.default_manifest_repository.clone();
    let ctx = Arc::new(ctx);
    let health = Arc::new(Health::default());
    if let Some(addr) = health_addr {
        spawn_server(addr, admin::health_router(health.clone()));
    }
    if let Some(addr) = metrics_addr {
        spawn_server(addr, admin::metrics_router(ctx.metrics.clone()));
    }
    client
        .apiserver_version()
        .await
        .map_err(|e| format!("the Kubernetes API server does not answer: {e}"))?;
    let signal = controller::shutdown_on(controller::signal());
    tokio::select! {
        () = tracing::Instrument::instrument(wait_for_crd(&client), tracing::info_span!("startup")) => {}
        () = signal.clone() => return Ok(ExitCode::SUCCESS),
    }
    // Every replica serves conversions (the Service picks any), leader or not.
    let _webhook = match webhook_addr {
        Some(addr) => Some(start_webhook(args, &client, addr).await?),
        None => None,
    };
    health.set_ready(true);

    let concurrency = args.concurrency.max(1);
    if !args.leader_elect {
        controller::run(ctx, &args.namespaces, concurrency, signal).await;
        return Ok(ExitCode::SUCCESS);
    }

    let namespace = args
        .leader_election_namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let identity = std::env::var("POD_NAME")
        .unwrap_or_else(|_| format!("{}-{}", hostname(), std::process::id()));
    let mut election =
        Election::join(client, &namespace, &args.leader_election_id, &identity).await?;
    tracing::info!(%identity, lease = %args.leader_election_id, %namespace, "waiting for leadership");
    tokio::select! {
        () = election.acquired() => {}
        () = signal.clone() => {
            election.release().await;
            return Ok(ExitCode::SUCCESS);
        }
    }
    tracing::info!(%identity, "leading");
    ctx.metrics.set_leader(true);
    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
    let lost = election.lost();
    let watcher = tokio::spawn(async move {
        lost.await;
        let _ = lost_tx.send(());
    });
    let lost_rx = lost_rx.shared();
    let stop =
        controller::shutdown_on(futures::future::select(signal, lost_rx.clone()).map(|_| ()));
    controller::run(ctx.clone(), &args.namespaces, concurrency, stop).await;
    ctx.metrics.set_leader(false);
    watcher.abort();
    let _ = watcher.await;
    let was_lost = lost_rx.now_or_never().is_some_and(|r| r.is_ok());
    election.release().await;
    if was_lost {
        // Another replica leads now; restarting gives a clean standby.
        tracing::error!("leadership lost; exiting");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn start_webhook(
    args: &RunArgs,
    client: &kube::Client,
    addr: std::net::SocketAddr,
) -> Result<webhook::Webhook, String> {
    let namespace = args
        .leader_election_namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let endpoint = match &args.webhook_url {
        Some(u) => webhook::Endpoint::Url(u.clone()),
        None => webhook::Endpoint::Service {
            namespace: namespace.clone(),
            name: args.webhook_service.clone(),
            port: args.webhook_service_port,
        },
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--webhook-bind-address {addr}: {e}"))?;
    webhook::start(
        client.clone(),
        listener,
        webhook::Options {
            endpoint,
            secret_namespace: namespace,
            secret_name: args.webhook_secret.clone(),
            policy: webhook::Policy::default(),
            check_every: std::time::Duration::from_secs(60),
        },
    )
    .await
    .map_err(|e| format!("conversion webhook: {e}"))
}

fn spawn_server(addr: std::net::SocketAddr, router: axum::Router) {
    tokio::spawn(async move {
        if let Err(e) = admin::serve(addr, router).await {
            tracing::error!(%addr, error = %e, "HTTP endpoint failed");
        }
    });
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "wandb-operator".into())
}

/// Waits until the WeightsAndBiases API is served, saying what to do meanwhile (a controller
/// started before its CRD would otherwise only log list errors).
async fn wait_for_crd(client: &kube::Client) {
    let api: kube::Api<wandb_api::WeightsAndBiases> = kube::Api::all(client.clone());
    let mut warned = false;
    loop {
        match api
            .list_metadata(&kube::api::ListParams::default().limit(1))
            .await
        {
            Ok(_) => return,
            Err(kube::Error::Api(s)) if s.code == 404 => {
                if !warned {
                    tracing::error!(
                        "the WeightsAndBiases CRD (weightsandbiases.apps.wandb.com) is not installed; \
                         install it with `wandb-operator crd | kubectl apply --server-side -f -` or the Helm chart. Waiting for it."
                    );
                    warned = true;
                }
            }
            // Forbidden in some namespaces-only setups: the controller's own watches will say.
            Err(kube::Error::Api(s)) if s.code == 403 => return,
            Err(e) => tracing::warn!(error = %e, "checking for the WeightsAndBiases CRD"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
}
