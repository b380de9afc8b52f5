//! `wandb-operator`: the controller and its offline tools.

mod render_cmd;

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
    /// Print the WeightsAndBiases CustomResourceDefinition as YAML.
    Crd,
    /// Print every object the operator would create for a WeightsAndBiases resource (offline).
    Render(render_cmd::RenderArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", wandb_api::crd_yaml());
            ExitCode::SUCCESS
        }
        Command::Render(args) => render_cmd::run(&args),
    }
}
