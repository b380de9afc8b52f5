//! `run`: the controller process.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use wandb_operator::controller::{self, Context};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args)]
pub struct RunArgs {
    /// Watch only this namespace (repeatable). Default: every namespace.
    #[arg(short = 'n', long = "namespace")]
    pub namespaces: Vec<String>,
    /// Maximum number of WeightsAndBiases reconciled at the same time.
    #[arg(long, default_value_t = 4)]
    pub concurrency: u16,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "WANDB_OPERATOR_LOG_FORMAT")]
    pub log_format: LogFormat,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

pub fn run(args: &RunArgs) -> ExitCode {
    init_logging(args.log_format);
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
    rt.block_on(async {
        // kube is built with rustls + aws-lc-rs only, so rustls picks that provider by itself;
        // no process-wide provider needs installing.
        let client = match kube::Client::try_default().await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "no Kubernetes client configuration");
                return ExitCode::FAILURE;
            }
        };
        let ctx = Arc::new(Context::new(client));
        let shutdown = controller::shutdown_on(controller::signal());
        controller::run(ctx, &args.namespaces, args.concurrency.max(1), shutdown).await;
        ExitCode::SUCCESS
    })
}
