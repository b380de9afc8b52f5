//! Backups before an upgrade's migrations, and the restore of one.
//!
//! W&B's migrations are forward-only: the way back from an upgrade is a dump taken before the
//! new version's migrations ran. When `spec.wandb.version` differs from the last version whose
//! migrations succeeded (an upgrade; a first install has nothing to lose), one Job per managed
//! MySQL and ClickHouse dumps it as `<cr>/<kind>-<instance>/<from>-<to>-<time>.<ext>` with a
//! `.sha256` file beside it: into the instance's managed object store when it has one
//! ([`super::backup_store`]), else into the PVC `<cr>-backups` (kept like data, and by default
//! even on `purge`). The Jobs run with the service's own image and uid, and read the service's
//! generated credentials by secretKeyRef: the pod spec never holds a password. They run one
//! after the other (`decide::backups::held_back`): the PVC is `ReadWriteOnce`.
//!
//! The time is stamped by the controller when it first creates the Job ([`stamp`]); the Job
//! name carries no time, so an existing Job is recognised after a restart and never re-created.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;
use wandb_api::{BackupMode, RetentionPolicy, WeightsAndBiases};

use super::backup_store::{self, Store};
use super::workload::{lit, pod_spec, secret_env};
use super::{
    CLICKHOUSE_DATABASE, CLICKHOUSE_TCP_PORT, CLICKHOUSE_USER, InfraContext, KEY_PASSWORD,
    KEY_ROOT_PASSWORD, MYSQL_DATABASE, MYSQL_PORT, credentials_secret, resolve_image,
};
use crate::build::pod::{self, container_security};
use crate::connection::ServiceKind;
use crate::desired::{DesiredObject, Phase};
use crate::instance::{Instance, Mode};
use crate::names;

/// Label on backup Jobs naming the service they dump (`mysql-default`).
pub const BACKUP_LABEL: &str = "apps.wandb.com/backup";
/// Label on restore Jobs naming the service they load.
pub const RESTORE_LABEL: &str = "apps.wandb.com/restore";
/// Annotations on a backup Job: the versions, and (once stamped) the dump's path in the PVC.
pub const FROM_ANNOTATION: &str = "apps.wandb.com/backup-from-version";
pub const TO_ANNOTATION: &str = "apps.wandb.com/backup-to-version";
pub const LOCATION_ANNOTATION: &str = "apps.wandb.com/backup-location";
/// Where the PVC is mounted in backup and restore pods.
pub const MOUNT: &str = "/backups";
/// Size of the backups PVC when it is created (it can be expanded afterwards).
pub const PVC_SIZE: &str = "20Gi";
/// A failing dump is retried this often before the upgrade stops with `BackupFailed`.
pub const BACKOFF_LIMIT: i32 = 2;
/// What [`stamp`] replaces; left in objects that were never stamped (`render`).
const UNSTAMPED: &str = "<time>";

/// An upgrade from the version whose migrations ran last to the requested one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upgrade {
    pub from: String,
    pub to: String,
}

/// The upgrade the CR asks for, when its data must be backed up first: not a first install
/// (nothing ran yet), not the same version, not the acknowledged return to a restored version
/// (the data was just restored), not `mode: none`.
pub fn upgrade_of(cr: &WeightsAndBiases) -> Option<Upgrade> {
    let to = &cr.spec.wandb.version;
    let from = cr
        .status
        .as_ref()?
        .wandb
        .as_ref()?
        .migration
        .as_ref()?
        .last_success_version
        .as_ref()?;
    let restored = cr
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(names::RESTORED_VERSION_ANNOTATION));
    if from == to || restored == Some(to) || mode(cr) == BackupMode::None {
        return None;
    }
    Some(Upgrade {
        from: from.clone(),
        to: to.clone(),
    })
}

/// `spec.wandb.upgrade.backup.mode`, default `managedOnly`.
pub fn mode(cr: &WeightsAndBiases) -> BackupMode {
    backup_spec(cr).and_then(|b| b.mode).unwrap_or_default()
}

/// Backups kept per service.
pub fn keep(cr: &WeightsAndBiases) -> usize {
    backup_spec(cr).map_or(
        wandb_api::BackupSpec::default().keep(),
        wandb_api::BackupSpec::keep,
    )
}

/// What deleting the instance does to the backups PVC (`detach` unless `purge` is asked for).
pub fn pvc_policy(cr: &WeightsAndBiases) -> RetentionPolicy {
    backup_spec(cr)
        .and_then(|b| b.retention_policy.as_ref())
        .map(|r| r.on_delete)
        .unwrap_or(RetentionPolicy::Detach)
}

fn backup_spec(cr: &WeightsAndBiases) -> Option<&wandb_api::BackupSpec> {
    cr.spec.wandb.upgrade.as_ref()?.backup.as_ref()
}

/// `<cr>-backups`.
pub fn pvc_name(inst: &Instance) -> String {
    names::dns_label(&format!("{}-backups", inst.name))
}

/// The services a backup covers: managed MySQL and ClickHouse instances.
pub fn dumped(inst: &Instance) -> Vec<(ServiceKind, String)> {
    inst.services
        .iter()
        .filter(|((kind, _), mode)| {
            **mode == Mode::Managed && matches!(kind, ServiceKind::Mysql | ServiceKind::Clickhouse)
        })
        .map(|((kind, i), _)| (*kind, i.clone()))
        .collect()
}

/// External MySQL and ClickHouse instances: what `mode: required` waits for an acknowledgement of.
pub fn external_databases(inst: &Instance) -> Vec<(ServiceKind, String)> {
    inst.services
        .iter()
        .filter(|((kind, _), mode)| {
            **mode == Mode::External && matches!(kind, ServiceKind::Mysql | ServiceKind::Clickhouse)
        })
        .map(|((kind, i), _)| (*kind, i.clone()))
        .collect()
}

/// `mysql-default`: the service's directory in the PVC and its label value.
pub fn service_key(kind: ServiceKind, instance: &str) -> String {
    format!("{}-{instance}", kind.key())
}

/// `<cr>-backup-<kind>-<instance>-<from>-<to>`.
pub fn job_name(inst: &Instance, kind: ServiceKind, instance: &str, up: &Upgrade) -> String {
    names::dns_label(&format!(
        "{}-backup-{}-{}-{}",
        inst.name,
        service_key(kind, instance),
        up.from,
        up.to
    ))
}

/// The dump's file name without its directory: `<from>-<to>-<time>.<ext>`.
pub fn file_name(kind: ServiceKind, up: &Upgrade, time: &str) -> String {
    let ext = match kind {
        ServiceKind::Clickhouse => "tar.gz",
        _ => "sql.gz",
    };
    format!("{}-{}-{time}.{ext}", up.from, up.to)
}

/// The backup objects of an upgrade: the PVC and one Job per dumped service (none when the CR
/// asks for no upgrade backup).
pub fn objects(ctx: &InfraContext) -> Vec<DesiredObject> {
    let Some(up) = upgrade_of(ctx.cr) else {
        return vec![];
    };
    let services = dumped(ctx.inst);
    if services.is_empty() {
        return vec![];
    }
    let store = backup_store::store(ctx.inst);
    let mut out = Vec::new();
    if store.is_none() {
        out.push(pvc(ctx.inst));
    }
    for (kind, instance) in services {
        out.push(backup_job(ctx, kind, &instance, &up, store.as_ref()));
    }
    out
}

fn pvc(inst: &Instance) -> DesiredObject {
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(pvc_name(inst)),
            namespace: Some(inst.namespace.clone()),
            labels: Some(names::labels(
                &inst.name,
                "backups",
                "backup",
                &inst.version,
            )),
            annotations: Some(BTreeMap::from([(
                names::RETAIN_ANNOTATION.to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(PVC_SIZE.into()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    DesiredObject::new(Phase::Backups, &claim).retained()
}

/// `q`, the ClickHouse client of the managed service, its credentials in a config file (the
/// generated password is alphanumeric, so it needs no XML escaping).
fn clickhouse_client(host: &str) -> String {
    format!(
        "printf '<config><user>{CLICKHOUSE_USER}</user><password>%s</password></config>\\n' \"$CLICKHOUSE_PASSWORD\" > /tmp/client.xml\n\
         q() {{ clickhouse-client --config-file /tmp/client.xml --host {host} --port {CLICKHOUSE_TCP_PORT} --database {CLICKHOUSE_DATABASE} \"$@\"; }}\n"
    )
}

/// The dump command: a shell script run by the service's own image. The credentials come from
/// the environment (secretKeyRefs) and reach the client through a file in `/tmp`, never argv.
pub fn dump_script(kind: ServiceKind, host: &str, dir: &str, keep: usize) -> String {
    let body = match kind {
        ServiceKind::Clickhouse => format!(
            "{}\
             work=$(mktemp -d /tmp/dump.XXXXXX)\n\
             for t in $(q --query \"SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name\"); do\n\
             \x20 q --query \"SHOW CREATE TABLE \\`$t\\`\" --format TSVRaw > \"$work/$t.sql\"\n\
             done\n\
             for t in $(q --query \"SELECT name FROM system.tables WHERE database = currentDatabase() AND engine NOT LIKE '%View' ORDER BY name\"); do\n\
             \x20 q --query \"SELECT * FROM \\`$t\\` FORMAT Native\" > \"$work/$t.native\"\n\
             done\n\
             tar -C \"$work\" -czf \"$part\" .\n",
            clickhouse_client(host)
        ),
        _ => format!(
            "printf '[client]\\npassword=%s\\n' \"$MYSQL_ROOT_PASSWORD\" > /tmp/client.cnf\n\
             mysqldump --defaults-extra-file=/tmp/client.cnf --host={host} --port={MYSQL_PORT} --user=root \
             --single-transaction --routines --events --triggers --add-drop-database --databases {MYSQL_DATABASE} \
             | gzip > \"$part\"\n"
        ),
    };
    format!(
        "set -euo pipefail\n\
         dir={MOUNT}/{dir}\n\
         mkdir -p \"$dir\"\n\
         part=\"$dir/.$BACKUP_FILE.partial\"\n\
         {body}\
         mv \"$part\" \"$dir/$BACKUP_FILE\"\n\
         (cd \"$dir\" && sha256sum \"$BACKUP_FILE\" > \"$BACKUP_FILE.sha256\")\n\
         # keep the newest {keep} dumps of this service\n\
         ls -1t \"$dir\" | grep -v '\\.sha256$' | tail -n +{next} | while read -r f; do rm -f \"$dir/$f\" \"$dir/$f.sha256\"; done\n\
         echo \"backup written: $dir/$BACKUP_FILE\"\n",
        next = keep + 1,
    )
}

/// The restore command: checks the dump against its checksum, then loads it (MySQL: the dump
/// drops and re-creates the database, so tables of a newer version do not survive).
pub fn restore_script(kind: ServiceKind, host: &str, path: &str) -> String {
    let body = match kind {
        ServiceKind::Clickhouse => format!(
            "{}\
             work=$(mktemp -d /tmp/restore.XXXXXX)\n\
             tar -C \"$work\" -xzf \"$file\"\n\
             for s in \"$work\"/*.sql; do t=$(basename \"$s\" .sql); q --query \"DROP TABLE IF EXISTS \\`$t\\` SYNC\"; done\n\
             for s in \"$work\"/*.sql; do q --multiquery < \"$s\"; done\n\
             for d in \"$work\"/*.native; do t=$(basename \"$d\" .native); q --query \"INSERT INTO \\`$t\\` FORMAT Native\" < \"$d\"; done\n",
            clickhouse_client(host)
        ),
        _ => format!(
            "printf '[client]\\npassword=%s\\n' \"$MYSQL_ROOT_PASSWORD\" > /tmp/client.cnf\n\
             gunzip -c \"$file\" | mysql --defaults-extra-file=/tmp/client.cnf --host={host} --port={MYSQL_PORT} --user=root\n"
        ),
    };
    format!(
        "set -euo pipefail\n\
         file={MOUNT}/{path}\n\
         (cd \"$(dirname \"$file\")\" && sha256sum -c \"$(basename \"$file\").sha256\")\n\
         {body}\
         echo \"restored: $file\"\n"
    )
}

/// Host of the managed service inside the namespace.
fn host(inst: &Instance, kind: ServiceKind, instance: &str) -> String {
    inst.service_name(kind, instance)
}

/// Credentials env of the service's client, by secretKeyRef to `<service>-credentials`.
fn credential_env(inst: &Instance, kind: ServiceKind, instance: &str) -> Vec<EnvVar> {
    let creds = credentials_secret(inst, kind, instance);
    match kind {
        ServiceKind::Clickhouse => vec![secret_env("CLICKHOUSE_PASSWORD", &creds, KEY_PASSWORD)],
        _ => vec![secret_env("MYSQL_ROOT_PASSWORD", &creds, KEY_ROOT_PASSWORD)],
    }
}

fn uid(kind: ServiceKind) -> i64 {
    match kind {
        ServiceKind::Clickhouse => 101,
        _ => 999,
    }
}

/// The object-store step of a backup or restore pod: the client's script and extra env.
struct Transfer {
    store: Store,
    script: String,
    env: Vec<EnvVar>,
}

/// A pod running `script` in the service's image with the dumps at [`MOUNT`] and `/tmp`. With
/// a `transfer`, [`MOUNT`] is an `emptyDir` and the object-store client runs after the dump
/// (backup) or before the load (restore); without, it is the backups PVC.
fn job_pod(
    ctx: &InfraContext,
    kind: ServiceKind,
    instance: &str,
    container_name: &str,
    script: String,
    mut env: Vec<EnvVar>,
    transfer: Option<Transfer>,
) -> k8s_openapi::api::core::v1::PodSpec {
    let img = resolve_image(ctx, kind, instance);
    env.extend(credential_env(ctx.inst, kind, instance));
    let mut spec = pod_spec(ctx, kind, instance, uid(kind));
    spec.restart_policy = Some("Never".into());
    let mounts = vec![
        VolumeMount {
            name: "backups".into(),
            mount_path: MOUNT.into(),
            ..Default::default()
        },
        VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..Default::default()
        },
    ];
    let service = Container {
        name: container_name.into(),
        image: Some(img.reference(ctx.inst.image_registry.as_deref())),
        command: Some(vec!["bash".into(), "-c".into(), script]),
        env: Some(env),
        volume_mounts: Some(mounts.clone()),
        security_context: Some(container_security()),
        ..Default::default()
    };
    let dumps = match &transfer {
        None => Volume {
            name: "backups".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: pvc_name(ctx.inst),
                read_only: None,
            }),
            ..Default::default()
        },
        Some(_) => Volume {
            name: "backups".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
    };
    match transfer {
        None => spec.containers = vec![service],
        Some(t) => {
            let restore = container_name == "restore";
            let client = backup_store::client_container(
                if restore { "download" } else { "upload" },
                backup_store::uploader_image().reference(ctx.inst.image_registry.as_deref()),
                &t.store,
                t.script,
                t.env,
                mounts,
            );
            // Init containers run to completion in order: the dump before its upload, the
            // download before its load.
            let (first, then) = if restore {
                (client, service)
            } else {
                (service, client)
            };
            spec.init_containers = Some(vec![first]);
            spec.containers = vec![then];
        }
    }
    spec.volumes = Some(vec![
        dumps,
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
    ]);
    spec
}

fn backup_job(
    ctx: &InfraContext,
    kind: ServiceKind,
    instance: &str,
    up: &Upgrade,
    store: Option<&Store>,
) -> DesiredObject {
    let inst = ctx.inst;
    let key = service_key(kind, instance);
    let dir = format!("{}/{key}", inst.name);
    let script = dump_script(kind, &host(inst, kind, instance), &dir, keep(ctx.cr));
    let file = lit("BACKUP_FILE", &file_name(kind, up, UNSTAMPED));
    let rel = format!("{dir}/{}", file_name(kind, up, UNSTAMPED));
    let location = store.map_or_else(|| rel.clone(), |s| backup_store::location(s, &rel));
    let transfer = store.map(|s| Transfer {
        store: s.clone(),
        script: backup_store::upload_script(MOUNT, &dir, keep(ctx.cr)),
        env: vec![file.clone()],
    });
    let spec = job_pod(ctx, kind, instance, "backup", script, vec![file], transfer);
    let mut labels = names::labels(&inst.name, &format!("backup-{key}"), "backup", &up.to);
    labels.insert(BACKUP_LABEL.into(), names::label_value(&key));
    let mut job = pod::job(
        job_name(inst, kind, instance, up),
        inst,
        labels,
        spec,
        BACKOFF_LIMIT,
        None,
    );
    job.metadata.annotations = Some(BTreeMap::from([
        // Kept after the upgrade (not pruned): the record of the backup, up to `keep`.
        (names::RETAIN_ANNOTATION.to_string(), "true".to_string()),
        (FROM_ANNOTATION.to_string(), up.from.clone()),
        (TO_ANNOTATION.to_string(), up.to.clone()),
        (LOCATION_ANNOTATION.to_string(), location),
    ]));
    DesiredObject::new(Phase::Backups, &job)
}

/// Sets the dump's time (`20261206T210000Z`) in every backup Job: its file name and the
/// location annotation the status records. Called by the controller before applying; a Job
/// that exists keeps the time it was created with (Jobs are never re-applied).
pub fn stamp(objects: &mut [DesiredObject], time: &str) {
    for o in objects
        .iter_mut()
        .filter(|o| o.phase == Phase::Backups && o.kind == "Job")
    {
        replace_strings(&mut o.object, time);
    }
}

fn replace_strings(v: &mut Value, time: &str) {
    match v {
        Value::String(s) if s.contains(UNSTAMPED) && !s.contains('\n') => {
            *s = s.replace(UNSTAMPED, time);
        }
        Value::Array(a) => a.iter_mut().for_each(|x| replace_strings(x, time)),
        Value::Object(m) => m.values_mut().for_each(|x| replace_strings(x, time)),
        _ => {}
    }
}

/// A Job loading the dump at `path` (a backup's location: in the PVC, or `s3://` in the managed
/// object store) into the managed service `kind`/`instance`. Built by `wandb-operator restore`
/// while the instance is paused.
pub fn restore_job(
    ctx: &InfraContext,
    kind: ServiceKind,
    instance: &str,
    path: &str,
    job_name: &str,
) -> Result<DesiredObject, String> {
    let inst = ctx.inst;
    let key = service_key(kind, instance);
    let (rel, transfer) = if path.starts_with("s3://") {
        let store = backup_store::store(inst).ok_or_else(|| {
            format!("backup {path} is in an object store this instance no longer runs")
        })?;
        let rel = backup_store::relative(&store, path)
            .ok_or_else(|| {
                format!(
                    "backup {path} is not in this instance's object store ({})",
                    backup_store::location(&store, "")
                )
            })?
            .to_string();
        let script = backup_store::download_script(MOUNT, &rel);
        (
            rel,
            Some(Transfer {
                store,
                script,
                env: vec![],
            }),
        )
    } else {
        (path.to_string(), None)
    };
    let script = restore_script(kind, &host(inst, kind, instance), &rel);
    let spec = job_pod(ctx, kind, instance, "restore", script, vec![], transfer);
    let mut labels = names::labels(
        &inst.name,
        &format!("restore-{key}"),
        "restore",
        &inst.version,
    );
    labels.insert(RESTORE_LABEL.into(), names::label_value(&key));
    // A failed restore is not retried blindly: the user looks at it first.
    let mut job = pod::job(names::dns_label(job_name), inst, labels, spec, 0, None);
    job.metadata.annotations = Some(BTreeMap::from([(
        LOCATION_ANNOTATION.to_string(),
        path.to_string(),
    )]));
    Ok(DesiredObject::new(Phase::Backups, &job))
}
