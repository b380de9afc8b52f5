//! The pure core of wandb-operator: a `WeightsAndBiases` CR, a server manifest and the
//! backing-service connections go in; every object the operator would apply comes out, in a
//! stable order, with secrets only as references. No client, no clock, no randomness: `render`,
//! the controller, snapshot tests and benchmarks all run this same code.

pub mod backends;
mod build;
pub mod connection;
pub mod crview;
pub mod decide;
pub mod desired;
pub mod env;
mod error;
pub mod inputs_hash;
pub mod instance;
pub mod names;
pub mod needs;
mod object_checks;
pub mod references;
pub mod render;
pub mod takeover;

pub use backends::{Backend, InfraPlan, Observed, Readiness};
pub use build::security;
pub use build::{
    BACKOFF_LIMIT, Built, GATEWAY_API_VERSION, MIGRATION_LABEL, ca_config_map, job_name,
};
pub use connection::{ConnValue, Connection, Connections, ServiceKind};
pub use desired::{DesiredObject, Phase, SecretSource, SecretSpec};
pub use error::EngineError;
pub use instance::{Instance, Mode};

use wandb_api::WeightsAndBiases;
use wandb_manifest::ServerManifest;

/// Resolves and builds. `extra` connections (from `render --connections` or the controller)
/// override the defaults derived from the CR.
pub fn plan(
    cr: &WeightsAndBiases,
    manifest: &ServerManifest,
    extra: Option<&Connections>,
) -> Result<Built, Vec<EngineError>> {
    let features = manifest.effective_features(&cr.spec.wandb.features.clone().unwrap_or_default());
    let mut inst = Instance::from_cr(cr).map_err(|e| vec![e])?;
    let needed = needs::service_kinds(manifest, &features);
    inst.services.retain(|(kind, _), _| needed.contains(kind));
    let mut conns = inst.default_connections();
    if let Some(extra) = extra {
        conns.overlay(extra.clone());
    }
    let view = crview::build(cr, &inst, &conns);
    let ctx = build::BuildContext {
        cr,
        inst: &inst,
        manifest,
        features: &features,
        conns: &conns,
        view: &view,
        probes: cr.spec.wandb.probes.as_ref(),
        proxy_env: build_proxy_env(cr, &inst),
        warnings: Default::default(),
    };
    build::build(&ctx)
}

/// The Job that loads the dump at `path` (a location in `status.wandb.backups`) into the managed
/// `kind` instance of `built` (the plan of `cr`). Only managed MySQL and ClickHouse.
pub fn restore_job(
    cr: &WeightsAndBiases,
    manifest: &ServerManifest,
    built: &Built,
    kind: ServiceKind,
    instance: &str,
    path: &str,
    job_name: &str,
) -> Result<DesiredObject, String> {
    if !matches!(kind, ServiceKind::Mysql | ServiceKind::Clickhouse)
        || built.instance.services.get(&(kind, instance.to_string())) != Some(&Mode::Managed)
    {
        return Err(format!(
            "{} {instance} is not a managed MySQL or ClickHouse of this instance: the operator \
             restores only what it runs",
            kind.key()
        ));
    }
    let features = manifest.effective_features(&cr.spec.wandb.features.clone().unwrap_or_default());
    let ctx = backends::InfraContext {
        cr,
        inst: &built.instance,
        manifest,
        features: &features,
    };
    backends::managed::backup::restore_job(&ctx, kind, instance, path, job_name)
}

fn build_proxy_env(
    cr: &WeightsAndBiases,
    inst: &Instance,
) -> Vec<k8s_openapi::api::core::v1::EnvVar> {
    build::proxy_env_for(cr.spec.global.as_ref().and_then(|g| g.proxy.as_ref()), inst)
}
