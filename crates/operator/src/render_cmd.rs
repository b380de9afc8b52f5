//! `render`: CR (+ manifest + connections) -> multi-document YAML, with no cluster.
//!
//! Bad input exits with code 2 and a message naming the file and the field.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use wandb_api::WeightsAndBiases;
use wandb_engine::Connections;
use wandb_manifest::{ManifestError, ManifestLocation, ServerManifest};
use wandb_operator::manifests::{self, OciLoader};

#[derive(Args)]
pub struct RenderArgs {
    /// The WeightsAndBiases resource (YAML).
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// Manifest source: `file://DIR` (DIR/<version>.yaml or DIR/<version>/*.yaml), `builtin://`
    /// or `oci://REPOSITORY` (tag = the CR's version; pulled anonymously). Defaults to where the
    /// operator would read it: the resource's `spec.wandb.manifestRepository`, else
    /// `oci://<spec.global.imageRegistry or us-docker.pkg.dev/wandb-production/public>/wandb/server-manifest`.
    #[arg(long)]
    pub manifest: Option<String>,
    /// Registries (`host:port`) to pull `oci://` manifests from over plain HTTP (repeatable or
    /// comma-separated).
    #[arg(long = "insecure-registry", value_delimiter = ',')]
    pub insecure_registries: Vec<String>,
    /// Backing-service connections overriding the defaults (YAML:
    /// `{mysql: {default: {url: {secretKeyRef: {name, key}}, host: db}}}`).
    #[arg(long)]
    pub connections: Option<PathBuf>,
    /// Namespace for a resource that names none.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
}

/// Exit code for bad input (CR, manifest or connections).
const BAD_INPUT: u8 = 2;

pub fn run(args: &RenderArgs) -> ExitCode {
    match render(args) {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(BAD_INPUT)
        }
    }
}

fn render(args: &RenderArgs) -> Result<String, String> {
    let file = args.file.display();
    let text = std::fs::read_to_string(&args.file).map_err(|e| format!("{file}: {e}"))?;
    let mut cr = parse_any(&text).map_err(|e| format!("{file}: {e}"))?;
    if cr.metadata.namespace.is_none() {
        cr.metadata.namespace = Some(args.namespace.clone());
    }
    let location = match &args.manifest {
        Some(m) => m.clone(),
        None => manifests::location_for(&cr, None).0,
    };
    let location = location.as_str();
    let manifest = load_manifest(location, &cr.spec.wandb.version, &args.insecure_registries)
        .map_err(|e| {
            format!(
                "manifest {location} (version {}): {e}",
                cr.spec.wandb.version
            )
        })?;
    manifest.check_compatible().map_err(|e| {
        format!(
            "manifest {location} (version {}): {e}",
            cr.spec.wandb.version
        )
    })?;
    manifest.ensure_valid().map_err(|e| {
        format!(
            "manifest {location} (version {}): {e}",
            cr.spec.wandb.version
        )
    })?;
    let conns = match &args.connections {
        Some(p) => {
            let t = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Some(Connections::from_yaml(&t).map_err(|e| format!("{}: {e}", p.display()))?)
        }
        None => None,
    };
    let built = wandb_engine::plan(&cr, &manifest, conns.as_ref()).map_err(|errs| {
        errs.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n  ")
    })?;
    for w in &built.warnings {
        eprintln!("warning: {w}");
    }
    let ns = cr.metadata.namespace.clone().unwrap_or_default();
    Ok(wandb_engine::render::to_yaml(&built, &ns))
}

/// Loads a manifest; `oci://` runs the registry client on a one-off runtime (render is sync and
/// needs no cache: one process, one load).
fn load_manifest(
    location: &str,
    version: &str,
    insecure: &[String],
) -> Result<ServerManifest, ManifestError> {
    let parsed = ManifestLocation::parse(location)?;
    if !matches!(parsed, ManifestLocation::Oci(_)) {
        return parsed.load(version);
    }
    let loader = OciLoader::new(insecure.to_vec());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ManifestError::Registry {
            reference: location.to_owned(),
            message: format!("cannot start the async runtime: {e}"),
        })?;
    rt.block_on(manifests::load(&loader, &parsed, version, None))
        .map(|m| (*m).clone())
}

/// A v2 resource, or a v1 one converted as the operator's webhook converts it (its findings
/// printed as warnings).
fn parse_any(text: &str) -> Result<WeightsAndBiases, String> {
    if !crate::convert_cmd::is_v1(text)? {
        return parse_cr(text);
    }
    let converted = crate::convert_cmd::convert_text(text)?;
    for f in &converted.findings {
        eprintln!("warning: {f}");
    }
    if converted.v2.spec.wandb.version.is_empty() {
        return Err(
            "spec.values.app.image.tag: no W&B version to render; set app.image.tag".into(),
        );
    }
    Ok(converted.v2)
}

/// Parses and validates a CR: YAML/type errors name the field and line; CEL rules (the same the
/// API server enforces) name the field and the rule's message.
pub fn parse_cr(text: &str) -> Result<WeightsAndBiases, String> {
    let cr: WeightsAndBiases = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    if cr.metadata.name.as_deref().unwrap_or("").is_empty() {
        return Err("metadata.name: is required".into());
    }
    if let Err(errs) = cr.validate_cel() {
        return Err(errs.to_string());
    }
    Ok(cr)
}
