//! `wandb-operator`: the controller and its offline tools.

mod check_cmd;
mod convert_cmd;
mod render_cmd;
mod run_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "wandb-operator",
    version,
    about = "Kubernetes operator for self-hosted W&B Server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check an installation (the chart's `helm test`): the API server serves the CRD and the
    /// operator's Deployment has an available replica.
    Check(check_cmd::CheckArgs),
    /// Convert an apps.wandb.com/v1 WeightsAndBiases (operator-wandb chart values) to v2, as the
    /// operator's conversion webhook does: prints the v2 resource and the Secret it needs.
    Convert(convert_cmd::ConvertArgs),
    /// Print the WeightsAndBiases CustomResourceDefinition as YAML.
    Crd,
    /// Print every object the operator would create for a WeightsAndBiases resource (offline).
    Render(render_cmd::RenderArgs),
    /// Run the controller against the cluster of the current kubeconfig or service account.
    Run(run_cmd::RunArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", wandb_api::crd_yaml());
            ExitCode::SUCCESS
        }
        Command::Check(args) => check_cmd::run(&args),
        Command::Convert(args) => convert_cmd::run(&args),
        Command::Render(args) => render_cmd::run(&args),
        Command::Run(args) => run_cmd::run(&args),
    }
}
