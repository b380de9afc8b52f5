//! Day-2 commands against a live cluster (`status`, `diff`, `support-bundle`, `doctor`,
//! `restore`) and the
//! offline `images`. Each command is one module; this one holds what they share: the cluster
//! connection (kubeconfig, `--context`, `-n`), reading a resource from a file or the cluster,
//! loading its server manifest and planning it with the engine, exactly as the controller does.

pub mod bundle;
pub mod compose;
pub mod diff;
pub mod doctor;
pub mod images;
pub mod preflight;
pub mod redact;
pub mod restore;
pub mod status;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, ResourceExt};
use wandb_api::WeightsAndBiases;
use wandb_engine::Built;
use wandb_manifest::{ManifestLocation, ServerManifest};

use crate::manifests::{self, OciLoader};

/// Exit code when a command could not do its job (bad input, no cluster, not found); `1` is
/// kept for the answer "not ready" / "differs" / "problems found".
pub const FAILED: u8 = 2;

/// How to reach the cluster, as kubectl spells it.
#[derive(Args, Clone, Debug, Default)]
pub struct KubeArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else in-cluster).
    #[arg(long, env = "KUBECONFIG", hide_env = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long)]
    pub context: Option<String>,
    /// Namespace of the resource (default: the context's namespace, else `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// User to impersonate (as `kubectl --as`).
    #[arg(long = "as")]
    pub as_user: Option<String>,
    /// Group to impersonate (repeatable; as `kubectl --as-group`).
    #[arg(long = "as-group")]
    pub as_groups: Vec<String>,
}

/// A client and the namespace to work in.
pub struct Cluster {
    pub client: Client,
    pub namespace: String,
    /// The client's configuration (for a client without credentials, and the API address).
    pub config: kube::Config,
}

impl KubeArgs {
    /// Connects as kubectl would: an explicit kubeconfig or context is read from the file; with
    /// neither, kube's inference ($KUBECONFIG, ~/.kube/config, then the in-cluster account).
    pub async fn connect(&self) -> Result<Cluster, String> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        // `KUBECONFIG` may list several files (`a:b`): kube merges them when it reads the
        // variable itself, so a path with a separator is left to it.
        let explicit_file = self
            .kubeconfig
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty() && !p.to_string_lossy().contains(':'));
        let mut config = match (explicit_file, &self.context) {
            (Some(path), _) => {
                let kc = Kubeconfig::read_from(path)
                    .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?;
                kube::Config::from_custom_kubeconfig(kc, &options)
                    .await
                    .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?
            }
            (None, Some(_)) => kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| format!("kubeconfig: {e}"))?,
            (None, None) => kube::Config::infer()
                .await
                .map_err(|e| format!("no Kubernetes client configuration: {e}"))?,
        };
        if let Some(user) = &self.as_user {
            config.auth_info.impersonate = Some(user.clone());
        }
        if !self.as_groups.is_empty() {
            config.auth_info.impersonate_groups = Some(self.as_groups.clone());
        }
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client =
            Client::try_from(config.clone()).map_err(|e| format!("no Kubernetes client: {e}"))?;
        Ok(Cluster {
            client,
            namespace,
            config,
        })
    }
}

/// Where the server manifest comes from, when the resource does not say.
#[derive(Args, Clone, Debug, Default)]
pub struct ManifestArgs {
    /// Manifest source (`builtin://`, `file://DIR`, `oci://REPOSITORY`) for a resource without
    /// `spec.wandb.manifestRepository`: the operator's `--default-manifest-repository`
    /// (default `builtin://`).
    #[arg(long)]
    pub manifest: Option<String>,
    /// Registries (`host:port`) to pull `oci://` manifests from over plain HTTP.
    #[arg(long = "insecure-registry", value_delimiter = ',')]
    pub insecure_registries: Vec<String>,
}

impl ManifestArgs {
    /// The location used for `cr`: its own, else `--manifest`, else the built-in one.
    pub fn location_for(&self, cr: &WeightsAndBiases) -> String {
        cr.spec
            .wandb
            .manifest_repository
            .clone()
            .or_else(|| self.manifest.clone())
            .unwrap_or_else(|| "builtin://".into())
    }

    /// Loads and checks the manifest of `cr` as the controller does; `oci://` pulls with the
    /// resource's imagePullSecrets when a cluster is given.
    pub async fn load(
        &self,
        cr: &WeightsAndBiases,
        cluster: Option<&Cluster>,
    ) -> Result<ServerManifest, String> {
        let location = self.location_for(cr);
        let version = &cr.spec.wandb.version;
        let fail = |e: wandb_manifest::ManifestError| {
            format!("manifest {location} (version {version}): {e}")
        };
        let parsed = ManifestLocation::parse(&location).map_err(fail)?;
        let creds = match (&parsed, cluster) {
            (ManifestLocation::Oci(repository), Some(c)) => {
                let secrets: Vec<String> = cr
                    .spec
                    .global
                    .as_ref()
                    .and_then(|g| g.image_pull_secrets.as_ref())
                    .into_iter()
                    .flatten()
                    .map(|r| r.name.clone())
                    .collect();
                let ns = cr.namespace().unwrap_or_else(|| c.namespace.clone());
                let host = manifests::registry_host(repository);
                manifests::pull_credentials(&c.client, &ns, &secrets, &host)
                    .await
                    .map_err(fail)?
            }
            _ => None,
        };
        let loader = OciLoader::new(self.insecure_registries.clone());
        let manifest = manifests::load(&loader, &parsed, version, creds.as_ref())
            .await
            .map_err(fail)?;
        manifest.check_compatible().map_err(fail)?;
        manifest.ensure_valid().map_err(fail)?;
        Ok((*manifest).clone())
    }
}

/// The engine's plan of `cr`, errors joined into one message.
pub fn plan(cr: &WeightsAndBiases, manifest: &ServerManifest) -> Result<Built, String> {
    wandb_engine::plan(cr, manifest, None).map_err(|errs| {
        errs.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Reads and validates a resource file (YAML); a resource without a namespace gets `namespace`.
pub fn read_cr_file(path: &Path, namespace: &str) -> Result<WeightsAndBiases, String> {
    let file = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: {e}"))?;
    let mut cr: WeightsAndBiases =
        serde_saphyr::from_str(&text).map_err(|e| format!("{file}: {e}"))?;
    if cr.metadata.name.as_deref().unwrap_or("").is_empty() {
        return Err(format!("{file}: metadata.name: is required"));
    }
    if let Err(errs) = cr.validate_cel() {
        return Err(format!("{file}: {errs}"));
    }
    if cr.metadata.namespace.is_none() {
        cr.metadata.namespace = Some(namespace.to_string());
    }
    Ok(cr)
}

/// The live resource `name` in the cluster's namespace.
pub async fn get_cr(cluster: &Cluster, name: &str) -> Result<WeightsAndBiases, String> {
    let api: Api<WeightsAndBiases> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    match api.get_opt(name).await {
        Ok(Some(cr)) => Ok(cr),
        Ok(None) => Err(format!(
            "WeightsAndBiases {}/{name} not found",
            cluster.namespace
        )),
        Err(kube::Error::Api(s)) if s.code == 404 => Err(format!(
            "the cluster does not serve WeightsAndBiases (apps.wandb.com/v2): is the CRD installed? ({})",
            s.message
        )),
        Err(e) => Err(format!(
            "reading WeightsAndBiases {}/{name}: {e}",
            cluster.namespace
        )),
    }
}

/// Runs `f` on a one-off runtime (the commands are short-lived and sequential).
pub fn block_on<F: Future<Output = ExitCode>>(f: F) -> ExitCode {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::from(FAILED)
        }
    }
}

/// Prints `msg` as an error and returns [`FAILED`].
pub fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(FAILED)
}
