//! `images`: every container image an instance would run (applications, migrations, managed
//! services and their exporters, an upgrade's backup Jobs), after `spec.global.imageRegistry`
//! retargeting, one a line, for
//! mirroring into an air-gapped registry. Offline: the same plan as `render`, read back from the
//! pod templates it produces, so the list cannot drift from what is applied.
//!
//! `--mirror-script REGISTRY` prints `skopeo copy` commands from each original image to where an
//! instance with `spec.global.imageRegistry: REGISTRY` pulls it (the same retargeting rule).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::{Value, json};
use wandb_api::WeightsAndBiases;
use wandb_engine::Built;
use wandb_manifest::ServerManifest;

use super::{ManifestArgs, fail};

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["file", "version"])))]
pub struct ImagesArgs {
    /// The WeightsAndBiases resource (YAML): the images of exactly this configuration.
    #[arg(short = 'f', long = "filename")]
    pub file: Option<PathBuf>,
    /// A W&B version: the images of an instance with every manifest feature enabled and every
    /// backing service managed with its exporter (everything that version can run).
    #[arg(long)]
    pub version: Option<String>,
    /// With `--version`: the `spec.global.imageRegistry` to retarget to.
    #[arg(long, requires = "version")]
    pub image_registry: Option<String>,
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// Print a shell script copying every original image into REGISTRY (host and optional
    /// path) instead of the list.
    #[arg(long, value_name = "REGISTRY")]
    pub mirror_script: Option<String>,
    /// Namespace for a resource that names none (only changes object names, not images).
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
}

pub fn run(args: &ImagesArgs) -> ExitCode {
    super::block_on(async {
        match output(args).await {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        }
    })
}

async fn output(args: &ImagesArgs) -> Result<String, String> {
    let (cr, manifest) = match (&args.file, &args.version) {
        (Some(file), _) => {
            let cr = super::read_cr_file(file, &args.namespace)?;
            let manifest = args.manifest.load(&cr, None).await?;
            (cr, manifest)
        }
        (None, Some(version)) => {
            let seed = everything_cr(version, &args.namespace, None, None)?;
            let manifest = args.manifest.load(&seed, None).await?;
            let cr = everything_cr(
                version,
                &args.namespace,
                args.image_registry.as_deref(),
                Some(&manifest),
            )?;
            (cr, manifest)
        }
        (None, None) => return Err("give -f FILE or --version VERSION".into()),
    };
    let cr = upgrading(cr)?;
    match &args.mirror_script {
        None => {
            let built = super::plan(&cr, &manifest)?;
            let mut out = String::new();
            for image in list(&built) {
                out.push_str(&image);
                out.push('\n');
            }
            Ok(out)
        }
        Some(registry) => mirror_script(&cr, &manifest, registry),
    }
}

/// `cr` as if it were being upgraded (its last migrated version set to an older one), so that
/// the plan holds the upgrade's backup Jobs and the list their images (the object-store
/// client among them): a mirror must hold them before the first upgrade needs them.
fn upgrading(cr: WeightsAndBiases) -> Result<WeightsAndBiases, String> {
    let mut v = serde_json::to_value(&cr).map_err(|e| e.to_string())?;
    v["status"]["wandb"]["migration"]["lastSuccessVersion"] = json!("0.0.0-images");
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// Every image of `built`, sorted and without repeats.
pub fn list(built: &Built) -> BTreeSet<String> {
    in_order(built).into_iter().collect()
}

/// Every image of every pod template of `built`, in plan order, repeats included (so that two
/// plans of one resource line up image by image).
fn in_order(built: &Built) -> Vec<String> {
    let mut out = Vec::new();
    for o in &built.objects {
        collect(&o.object, &mut out);
    }
    out
}

/// The `image` of every container, init container and ephemeral container under `v`, wherever a
/// pod spec sits (Deployment, StatefulSet, Job, CronJob ...).
fn collect(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if matches!(
                    k.as_str(),
                    "containers" | "initContainers" | "ephemeralContainers"
                ) && let Value::Array(items) = child
                {
                    for c in items {
                        if let Some(image) = c.get("image").and_then(Value::as_str) {
                            out.push(image.to_string());
                        }
                    }
                } else {
                    collect(child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
        _ => {}
    }
}

/// A resource of `version` that runs everything (without `manifest`: a seed to load it with): every feature the manifest names or an
/// application or topic requires, every backing service managed with telemetry on.
pub fn everything_cr(
    version: &str,
    namespace: &str,
    image_registry: Option<&str>,
    manifest: Option<&ServerManifest>,
) -> Result<WeightsAndBiases, String> {
    let mut features: BTreeSet<&str> = BTreeSet::new();
    if let Some(manifest) = manifest {
        features.extend(manifest.features.keys().map(String::as_str));
        for app in manifest.applications.values() {
            features.extend(app.features.iter().map(String::as_str));
        }
        for topic in &manifest.kafka.topics {
            features.extend(topic.features.iter().map(String::as_str));
        }
    }
    let features: serde_json::Map<String, Value> = features
        .into_iter()
        .map(|f| (f.to_string(), Value::Bool(true)))
        .collect();
    let telemetry = json!({"telemetry": {"enabled": true}});
    let mut spec = json!({
        "wandb": {"hostname": "http://wandb.local", "version": version, "features": features},
        "mysql": {"default": {"managedMysql": telemetry}},
        "redis": {"default": {"managedRedis": telemetry}},
        "objectStore": {"default": {"managedObjectStore": telemetry}},
        "clickhouse": {"default": {"managedClickhouse": telemetry}},
        "kafka": {"default": {"managedKafka": {}}},
    });
    if let Some(r) = image_registry {
        spec["global"] = json!({"imageRegistry": r});
    }
    let cr: WeightsAndBiases = serde_json::from_value(json!({
        "apiVersion": "apps.wandb.com/v2",
        "kind": "WeightsAndBiases",
        "metadata": {"name": "wandb", "namespace": namespace},
        "spec": spec,
    }))
    .map_err(|e| format!("building a resource for version {version}: {e}"))?;
    cr.validate_cel()
        .map_err(|e| format!("version {version}: {e}"))?;
    Ok(cr)
}

/// `skopeo copy` of each original image to its place under `registry`: the pairs come from two
/// plans of the resource, without a registry and retargeted to `registry`, image by image.
fn mirror_script(
    cr: &WeightsAndBiases,
    manifest: &ServerManifest,
    registry: &str,
) -> Result<String, String> {
    let registry = registry.trim_end_matches('/');
    if registry.is_empty() || registry.contains("://") {
        return Err(format!(
            "--mirror-script {registry:?}: a registry host and optional path, without a scheme, e.g. registry.example.com/mirror"
        ));
    }
    let with_registry = |r: Option<&str>| -> Result<Vec<String>, String> {
        let mut cr = cr.clone();
        cr.spec
            .global
            .get_or_insert_with(Default::default)
            .image_registry = r.map(str::to_string);
        Ok(in_order(&super::plan(&cr, manifest)?))
    };
    let sources = with_registry(None)?;
    let targets = with_registry(Some(registry))?;
    if sources.len() != targets.len() {
        return Err("internal error: the retargeted plan has a different number of images".into());
    }
    let pairs: BTreeSet<(String, String)> = sources.into_iter().zip(targets).collect();
    let mut out = format!(
        "#!/bin/sh\n# Copies the {} images of W&B {} into {registry} (all architectures).\n\
         # Needs skopeo, logged in to both sides (skopeo login). Then set\n\
         # spec.global.imageRegistry: {registry}\nset -eu\n",
        pairs.len(),
        cr.spec.wandb.version
    );
    for (src, dst) in pairs {
        out.push_str(&format!(
            "skopeo copy --all {} {}\n",
            shell_quote(&format!("docker://{src}")),
            shell_quote(&format!("docker://{dst}"))
        ));
    }
    Ok(out)
}

/// Single-quotes `s` for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_read_from_every_kind_of_container() {
        let v = json!({"spec": {"template": {"spec": {
            "initContainers": [{"name": "i", "image": "init:1"}],
            "containers": [{"name": "a", "image": "app:1"}, {"name": "b", "image": "side:2"}],
        }}}});
        let mut out = vec![];
        collect(&v, &mut out);
        out.sort();
        assert_eq!(out, ["app:1", "init:1", "side:2"]);
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(shell_quote("a'b"), r"'a'\''b'");
    }
}
