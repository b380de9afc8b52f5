//! Migration Jobs for the requested version. The Job name carries the version, so an upgrade
//! creates new Jobs and a finished Job of the same version is recognised after a restart.

use k8s_openapi::api::core::v1::Container;
use wandb_manifest::MigrationJob;

use super::{BuildContext, pod, security};
use crate::EngineError;
use crate::desired::{DesiredObject, Phase};
use crate::names;

/// Kubernetes retries a failing migration pod this many times with exponential backoff; after
/// that the Job fails and the instance is Stalled with the Job's reason.
pub const BACKOFF_LIMIT: i32 = 3;

/// Label naming the migration a Job runs.
pub const MIGRATION_LABEL: &str = "apps.wandb.com/migration";

/// `<cr>-migrate-<name>-<version>`, within 63 characters.
pub fn job_name(cr: &str, migration: &str, version: &str) -> String {
    names::dns_label(&format!("{cr}-migrate-{migration}-{version}"))
}

pub fn build(
    name: &str,
    m: &MigrationJob,
    ctx: &BuildContext,
) -> Result<DesiredObject, EngineError> {
    let inst = ctx.inst;
    let job_name = job_name(&inst.name, name, &inst.version);
    let mut labels = names::labels(
        &inst.name,
        &format!("migrate-{name}"),
        "migration",
        &inst.version,
    );
    labels.insert(MIGRATION_LABEL.into(), names::label_value(name));

    let mut mounts = pod::Mounts::default();
    mounts.add_manifest(
        &ctx.manifest
            .migration_volume_mounts(name)
            .unwrap_or_default(),
        &format!("migrations.{name}"),
    )?;
    let mut env = ctx.env_for(&ctx.manifest.migration_env(name).unwrap_or_default());
    pod::add_custom_ca(ctx.cr, inst, &mut mounts, &mut env);
    // Certificates external services' URLs name (ssl-ca=/etc/ssl/certs/mysql_ca.pem, ...).
    crate::backends::certs::add_to_pod(ctx.cr, inst, &mut mounts);
    env.extend(ctx.proxy_env.iter().cloned());
    super::overrides::apply_env(ctx.cr, None, None, &mut env);

    let container = Container {
        name: "migrate".into(),
        image: m
            .image
            .as_ref()
            .map(|i| i.reference(inst.image_registry.as_deref())),
        args: (!m.args.is_empty()).then(|| m.args.clone()),
        command: (!m.command.is_empty()).then(|| m.command.clone()),
        env: (!env.is_empty()).then_some(env),
        volume_mounts: (!mounts.mounts.is_empty()).then_some(mounts.mounts),
        security_context: Some(security::container_security(m.image.as_ref())),
        ..Default::default()
    };
    let mut spec = pod::base_pod_spec(inst);
    spec.containers = vec![container];
    spec.volumes = (!mounts.volumes.is_empty()).then_some(mounts.volumes);
    spec.restart_policy = Some("Never".into());

    let job = pod::job(job_name, inst, labels, spec, BACKOFF_LIMIT, None);
    Ok(DesiredObject::new(Phase::Migrations, &job))
}
