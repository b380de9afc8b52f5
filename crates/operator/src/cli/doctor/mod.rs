//! `doctor -f FILE` / `doctor NAME`: checks before an install or an upgrade, each finding with
//! its fix. Exit 1 when any check is an error, 2 when the checks could not run.
//!
//! Checked: the CRD is installed, established, serves v2 and matches this binary's; the operator
//! runs (pods labelled `app.kubernetes.io/name=wandb-operator`) and, with leader election, one of
//! them holds a fresh Lease; the server manifest loads and is compatible, and the engine accepts
//! the spec; every Secret and key the pods or the operator will read exists; external services
//! answer the preflight (from where doctor runs); the ingress class, the Gateway API or a default
//! StorageClass exist where the resource needs them; the version change from the running one is
//! not a downgrade and no migration of the running version failed.

mod needs;
mod platform;
mod resource;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use kube::{Api, ResourceExt};
use serde::Serialize;
use wandb_api::WeightsAndBiases;

use super::status::Output;
use super::{Cluster, KubeArgs, ManifestArgs, fail};

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["name", "file"])))]
pub struct DoctorArgs {
    /// Name of a live WeightsAndBiases.
    pub name: Option<String>,
    /// A WeightsAndBiases resource (YAML) to check before applying it.
    #[arg(short = 'f', long = "filename")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// Namespace of the operator (default: found by its label in any namespace).
    #[arg(long)]
    pub operator_namespace: Option<String>,
    /// Name of the operator's leader Lease.
    #[arg(long, default_value = "wandb-operator-leader")]
    pub leader_election_id: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Error,
}

/// One check's result.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub check: String,
    pub level: Level,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Default)]
pub(super) struct Findings(Vec<Finding>);

impl Findings {
    fn ok(&mut self, check: &str, message: impl Into<String>) {
        self.push(check, Level::Ok, message.into(), None);
    }
    fn warn(&mut self, check: &str, message: impl Into<String>, fix: impl Into<String>) {
        self.push(check, Level::Warning, message.into(), Some(fix.into()));
    }
    fn error(&mut self, check: &str, message: impl Into<String>, fix: impl Into<String>) {
        self.push(check, Level::Error, message.into(), Some(fix.into()));
    }
    fn push(&mut self, check: &str, level: Level, message: String, fix: Option<String>) {
        self.0.push(Finding {
            check: check.into(),
            level,
            message,
            fix,
        });
    }
}

pub fn run(args: &DoctorArgs) -> ExitCode {
    super::block_on(async {
        let cluster = match args.kube.connect().await {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        let findings = match check(&cluster, args).await {
            Ok(f) => f,
            Err(e) => return fail(e),
        };
        match args.output {
            Output::Json => println!(
                "{}",
                serde_json::to_string_pretty(&findings).expect("findings serialize")
            ),
            Output::Text => print!("{}", text(&findings)),
        }
        if findings.iter().any(|f| f.level == Level::Error) {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// Runs every check.
pub async fn check(cluster: &Cluster, args: &DoctorArgs) -> Result<Vec<Finding>, String> {
    let mut f = Findings::default();
    platform::crd(cluster, &mut f).await;
    platform::operator(cluster, args, &mut f).await;
    let wb: Api<WeightsAndBiases> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let (cr, live) = match (&args.file, &args.name) {
        (Some(file), _) => {
            let cr = super::read_cr_file(file, &cluster.namespace)?;
            let live = wb.get_opt(&cr.name_any()).await.ok().flatten();
            (cr, live)
        }
        (None, Some(name)) => match wb.get_opt(name).await {
            Ok(Some(cr)) => (cr.clone(), Some(cr)),
            Ok(None) => {
                f.error(
                    "resource",
                    format!("WeightsAndBiases {}/{name} not found", cluster.namespace),
                    "check the name and -n NAMESPACE, or use doctor -f FILE before creating it",
                );
                return Ok(f.0);
            }
            Err(e) => {
                f.error(
                    "resource",
                    format!(
                        "cannot read WeightsAndBiases {}/{name}: {e}",
                        cluster.namespace
                    ),
                    "install the CRD (see above) and check your permissions",
                );
                return Ok(f.0);
            }
        },
        (None, None) => return Err("give NAME or -f FILE".into()),
    };
    resource::upgrade_path(&cr, live.as_ref(), &mut f);
    let manifest = match args.manifest.load(&cr, Some(cluster)).await {
        Ok(m) => {
            f.ok(
                "manifest",
                format!(
                    "{} version {} loads and is compatible with this operator",
                    args.manifest.location_for(&cr),
                    cr.spec.wandb.version
                ),
            );
            m
        }
        Err(e) => {
            f.error(
                "manifest",
                e,
                "check spec.wandb.version and spec.wandb.manifestRepository (registry reachable, \
                 tag present, imagePullSecrets for a private registry); an incompatible manifest \
                 needs a newer operator",
            );
            return Ok(f.0);
        }
    };
    let built = match super::plan(&cr, &manifest) {
        Ok(b) => {
            f.ok("spec", "the engine accepts the spec");
            b
        }
        Err(e) => {
            f.error("spec", e, "fix the named fields of the resource");
            return Ok(f.0);
        }
    };
    resource::secrets(cluster, &cr, &built, &manifest, &mut f).await?;
    resource::preflight(cluster, &cr, &built, &mut f).await?;
    needs::networking(cluster, &built, &mut f).await;
    needs::storage(cluster, &built, &mut f).await;
    Ok(f.0)
}

/// Findings as lines: `[ok]`, `[warning]`, `[ERROR]`, each problem with its fix.
pub fn text(findings: &[Finding]) -> String {
    let mut o = String::new();
    for x in findings {
        let tag = match x.level {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Error => "ERROR",
        };
        o.push_str(&format!("[{tag}] {}: {}\n", x.check, x.message));
        if let Some(fix) = &x.fix {
            o.push_str(&format!("    fix: {fix}\n"));
        }
    }
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    let warnings = findings
        .iter()
        .filter(|f| f.level == Level::Warning)
        .count();
    o.push_str(&format!("{errors} error(s), {warnings} warning(s)\n"));
    o
}
