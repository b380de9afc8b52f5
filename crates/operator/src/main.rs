//! `wandb-operator`: the controller, its offline tools and the Day-2 commands. Installed (or
//! linked) as `kubectl-wandb` it is a kubectl plugin: `kubectl wandb status X` runs
//! `kubectl-wandb status X`, and help and errors then say `kubectl wandb`.

// The one exception to the workspace's `unsafe_code = "deny"`: mimalloc's option setter.
#[allow(unsafe_code)]
mod allocator;
mod check_cmd;
mod convert_cmd;
mod render_cmd;
mod run_cmd;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use wandb_operator::cli;

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
    /// One screen on an instance: Ready or why not, versions, URL, components, backing
    /// services, migrations, recent warnings. Exit 0 when Ready, 1 when not.
    Status(cli::status::StatusArgs),
    /// What applying a resource (or the next reconcile of a live one) would change, as unified
    /// diffs from a server-side dry-run. Exit 0 when nothing would change, 1 when something would.
    Diff(cli::diff::DiffArgs),
    /// Write a redacted archive of everything needed to debug an instance.
    SupportBundle(cli::bundle::BundleArgs),
    /// Every container image an instance would run, for mirroring (offline).
    Images(cli::images::ImagesArgs),
    /// Checks before an install or upgrade, each finding with its fix. Exit 1 on any error.
    Doctor(cli::doctor::DoctorArgs),
    /// Roll an instance back to the version a backup was taken from: pause it, restore the
    /// backup into the managed database with a Job, set that version, acknowledge, resume.
    Restore(cli::restore::RestoreArgs),
}

/// The name to show in help and errors: `kubectl wandb` when run as the kubectl plugin.
fn display_name() -> Option<&'static str> {
    let arg0 = std::env::args_os().next()?;
    let base = std::path::Path::new(&arg0)
        .file_stem()?
        .to_string_lossy()
        .into_owned();
    (base == "kubectl-wandb").then_some("kubectl wandb")
}

fn main() -> ExitCode {
    allocator::tune();
    let mut command = Cli::command();
    if let Some(name) = display_name() {
        command = command.name(name).bin_name(name);
    }
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    match cli.command {
        Command::Crd => {
            print!("{}", wandb_api::crd_yaml());
            ExitCode::SUCCESS
        }
        Command::Check(args) => check_cmd::run(&args),
        Command::Convert(args) => convert_cmd::run(&args),
        Command::Render(args) => render_cmd::run(&args),
        Command::Run(args) => run_cmd::run(&args),
        Command::Status(args) => cli::status::run(&args),
        Command::Diff(args) => cli::diff::run(&args),
        Command::SupportBundle(args) => cli::bundle::run(&args),
        Command::Images(args) => cli::images::run(&args),
        Command::Doctor(args) => cli::doctor::run(&args),
        Command::Restore(args) => cli::restore::run(&args),
    }
}
