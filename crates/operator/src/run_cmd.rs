//! `run`: the controller process. The flags are the Helm chart's contract
//! (charts/wandb-operator/values.yaml).

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use wandb_operator::controller::{self, Context};
use wandb_operator::http;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args)]
pub struct RunArgs {
    /// Watch only these namespaces (repeatable, or comma-separated). Default: every namespace.
    #[arg(
        short = 'n',
        long = "namespace",
        visible_alias = "namespaces",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,
    /// Maximum number of WeightsAndBiases reconciled at the same time.
    #[arg(long, default_value_t = 4)]
    pub concurrency: u16,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "WANDB_OPERATOR_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Log level (error, warn, info, debug, trace); `RUST_LOG` overrides it.
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// Address of `/metrics` (Prometheus text), e.g. `:8080`; `0` disables it.
    #[arg(long, default_value = "0")]
    pub metrics_bind_address: String,
    /// Address of `/livez` and `/readyz`, e.g. `:8081`; `0` disables it.
    #[arg(long, default_value = "0")]
    pub health_probe_bind_address: String,
    /// Leader election through a Lease (not implemented yet: with it, the process warns and every
    /// replica reconciles; reconciles are idempotent, so this is wasteful but safe).
    #[arg(long)]
    pub leader_elect: bool,
    /// Namespace of the leader-election Lease.
    #[arg(long)]
    pub leader_election_namespace: Option<String>,
}

fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

pub fn run(args: &RunArgs) -> ExitCode {
    init_logging(args.log_format, &args.log_level);
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
    rt.block_on(run_async(args))
}

async fn run_async(args: &RunArgs) -> ExitCode {
    // kube is built with rustls + aws-lc-rs only, so rustls picks that provider by itself; no
    // process-wide provider needs installing.
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no Kubernetes client configuration");
            return ExitCode::FAILURE;
        }
    };
    if args.leader_elect {
        tracing::warn!(
            lease_namespace = args
                .leader_election_namespace
                .as_deref()
                .unwrap_or_default(),
            "leader election is not implemented yet: this replica reconciles like every other"
        );
    }
    let ctx = Arc::new(Context::new(client));
    let mut servers = Vec::new();
    let mut addrs = Vec::new();
    for (what, addr) in [
        ("metrics", &args.metrics_bind_address),
        ("health", &args.health_probe_bind_address),
    ] {
        match http::parse_bind(addr) {
            Ok(Some(a)) if !addrs.contains(&a) => addrs.push(a),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(endpoint = what, error = %e, "bad bind address");
                return ExitCode::FAILURE;
            }
        }
    }
    for addr in addrs {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                tracing::info!(%addr, "serving /livez, /readyz and /metrics");
                servers.push(tokio::spawn(http::serve(l, ctx.clone())));
            }
            Err(e) => {
                tracing::error!(%addr, error = %e, "could not listen");
                return ExitCode::FAILURE;
            }
        }
    }
    let shutdown = controller::shutdown_on(controller::signal());
    controller::run(ctx, &args.namespaces, args.concurrency.max(1), shutdown).await;
    for s in servers {
        s.abort();
    }
    ExitCode::SUCCESS
}
