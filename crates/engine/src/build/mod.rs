//! Build: a resolved instance + manifest + connections -> every desired object, deterministic.

mod app;
mod migration;
mod networking;
pub mod overrides;
pub(crate) mod pod;
mod probes;
mod rbac;
pub mod security;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, EnvVar};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;
use wandb_api::{NetworkingMode, ProbesSpec, WeightsAndBiases};
use wandb_manifest::ServerManifest;

pub use migration::{BACKOFF_LIMIT, MIGRATION_LABEL, job_name};
pub use networking::GATEWAY_API_VERSION;
pub use pod::{ca_config_map, proxy_env as proxy_env_for};

use crate::backends::{self, InfraContext, InfraPlan};
use crate::connection::Connections;
use crate::desired::{DesiredObject, Phase, SecretSource, SecretSpec};
use crate::env::{self, EnvContext};
use crate::instance::Instance;
use crate::{EngineError, crview, names};

/// What build reads, resolved once per render.
pub struct BuildContext<'a> {
    pub cr: &'a WeightsAndBiases,
    pub inst: &'a Instance,
    pub manifest: &'a ServerManifest,
    pub features: &'a BTreeMap<String, bool>,
    pub conns: &'a Connections,
    pub view: &'a Value,
    pub probes: Option<&'a ProbesSpec>,
    pub proxy_env: Vec<EnvVar>,
    pub warnings: std::cell::RefCell<Vec<String>>,
}

impl BuildContext<'_> {
    pub fn env_for(&self, vars: &[wandb_manifest::EnvVar]) -> Vec<EnvVar> {
        let ctx = EnvContext {
            inst: self.inst,
            manifest: self.manifest,
            features: self.features,
            conns: self.conns,
            view: self.view,
            telemetry: self.conns.telemetry.as_ref(),
        };
        env::resolve(vars, &ctx, &mut self.warnings.borrow_mut())
    }
}

/// Everything an instance should have.
#[derive(Clone, Debug)]
pub struct Built {
    pub objects: Vec<DesiredObject>,
    pub secrets: Vec<SecretSpec>,
    pub warnings: Vec<String>,
    /// One entry per backing-service instance (managed and external), in (kind, instance)
    /// order: the names the controller gates readiness on.
    pub infra: Vec<InfraPlan>,
    /// The resolved instance everything above was built for.
    pub instance: Instance,
    /// `status.emailSink`: the effective email sink `(Secret, key)`.
    pub email_sink: Option<(String, String)>,
    /// Secrets a migration Job creates when it runs (its env names them in a literal
    /// `*_SECRET_NAME`, e.g. the internal signer's key), which pods read afterwards.
    pub created_by_migrations: std::collections::BTreeSet<String>,
}

pub fn build(ctx: &BuildContext) -> Result<Built, Vec<EngineError>> {
    let inst = ctx.inst;
    let mut objects = Vec::new();
    let mut errors = Vec::new();

    let sa_annotations = ctx
        .cr
        .spec
        .wandb
        .service_account
        .as_ref()
        .and_then(|s| s.annotations.clone());
    objects.extend(rbac::build(inst, sa_annotations));

    if let Some(certs) = ctx
        .cr
        .spec
        .global
        .as_ref()
        .and_then(|g| g.custom_ca_certs.as_ref())
        .filter(|c| !c.is_empty())
    {
        let data = certs
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("customCA{i}.crt"), c.clone()))
            .collect();
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(pod::ca_config_map(inst)),
                namespace: Some(inst.namespace.clone()),
                labels: Some(names::labels(
                    &inst.name,
                    "ca-certs",
                    "config",
                    &inst.version,
                )),
                ..Default::default()
            },
            data: Some(data),
            ..Default::default()
        };
        objects.push(DesiredObject::new(Phase::Config, &cm));
    }

    for (name, m) in &ctx.manifest.migrations {
        match migration::build(name, m, ctx) {
            Ok(o) => objects.push(o),
            Err(e) => errors.push(e),
        }
    }
    for (name, app) in ctx.manifest.enabled_applications(ctx.features) {
        match app::build(name, app, ctx) {
            Ok(o) => objects.extend(o),
            Err(e) => errors.push(e),
        }
    }
    if inst.networking == NetworkingMode::Ingress {
        objects.extend(networking::ingress(ctx, &mut ctx.warnings.borrow_mut()));
    }
    if inst.networking == NetworkingMode::Gateway {
        objects.extend(networking::gateway_api(ctx, &mut ctx.warnings.borrow_mut()));
    }
    ctx.warnings
        .borrow_mut()
        .extend(overrides::unknown_keys(ctx.cr, ctx.manifest));
    if !errors.is_empty() {
        return Err(errors);
    }
    let infra_ctx = InfraContext {
        cr: ctx.cr,
        inst,
        manifest: ctx.manifest,
        features: ctx.features,
    };
    let infra = backends::build(&infra_ctx);
    objects.extend(infra.objects);
    objects.extend(backends::managed::backup::objects(&infra_ctx));
    objects.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let secrets = secret_specs(ctx, infra.secrets);
    let problems = crate::object_checks::check(ctx.cr, inst, &objects, &secrets);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Built {
        objects,
        secrets,
        warnings: ctx.warnings.borrow().clone(),
        infra: infra.plans,
        instance: inst.clone(),
        email_sink: crview::email_sink(ctx.cr, inst),
        created_by_migrations: created_by_migrations(ctx.manifest),
    })
}

/// Secrets whose values the controller creates.
fn created_by_migrations(manifest: &ServerManifest) -> std::collections::BTreeSet<String> {
    manifest
        .migrations
        .keys()
        .flat_map(|m| manifest.migration_env(m).unwrap_or_default())
        .filter(|e| e.name.ends_with("_SECRET_NAME"))
        .filter_map(|e| e.value)
        .collect()
}

fn secret_specs(ctx: &BuildContext, infra: Vec<SecretSpec>) -> Vec<SecretSpec> {
    let inst = ctx.inst;
    let mut out = Vec::new();
    for gs in &ctx.manifest.generated_secrets {
        out.push(SecretSpec {
            name: env::generated_secret_name(inst, gs),
            keys: vec![env::GENERATED_SECRET_KEY.into()],
            source: SecretSource::Generated { length: gs.length },
            retain: true,
            shared: gs.use_exact_name,
            manifest_name: Some(gs.name.clone()),
            on_delete: inst.retention,
        });
    }
    if ctx.cr.spec.wandb.license.is_some() && ctx.cr.spec.wandb.license_secret.is_none() {
        out.push(SecretSpec {
            name: crview::license_secret(inst),
            keys: vec![crview::LICENSE_KEY.into()],
            source: SecretSource::FromSpec {
                field: "spec.wandb.license".into(),
            },
            retain: false,
            shared: false,
            manifest_name: None,
            on_delete: inst.retention,
        });
    }
    let smtp = ctx
        .cr
        .spec
        .wandb
        .notifications
        .as_ref()
        .and_then(|n| n.email.as_ref())
        .and_then(|e| e.smtp.as_ref());
    if smtp.is_some() {
        out.push(SecretSpec {
            name: crview::email_sink_secret(inst),
            keys: vec![crview::EMAIL_SINK_KEY.into()],
            source: SecretSource::EmailSink,
            retain: false,
            shared: false,
            manifest_name: None,
            on_delete: inst.retention,
        });
    }
    // Backing services: connection Secrets and generated credentials.
    out.extend(infra);
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
