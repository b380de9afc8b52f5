//! Backups before an upgrade's migrations: which objects an upgrade adds, and the exact dump and
//! restore commands (no container runs on the test cluster, so the commands are proven here).

use serde_json::Value;
use wandb_api::WeightsAndBiases;
use wandb_engine::backends::managed::{backup, backup_store};
use wandb_engine::{Built, Phase, ServiceKind};

mod common;

fn cr(version: &str, last_success: Option<&str>, extra: &str) -> WeightsAndBiases {
    let status = last_success
        .map(|v| format!("status:\n  wandb:\n    migration: {{lastSuccessVersion: \"{v}\"}}\n"))
        .unwrap_or_default();
    let yaml = format!(
        "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {{name: w, namespace: team}}\nspec:\n  wandb:\n    hostname: https://wandb.example.com\n    version: \"{version}\"\n{extra}{status}"
    );
    let cr: WeightsAndBiases = serde_saphyr::from_str(&yaml).unwrap();
    cr.validate_cel().unwrap();
    cr
}

fn plan(cr: &WeightsAndBiases) -> Built {
    wandb_engine::plan(cr, &common::manifest("fixture", "0.84.0"), None).unwrap()
}

fn backups(built: &Built) -> Vec<(String, String)> {
    built
        .objects
        .iter()
        .filter(|o| o.phase == Phase::Backups)
        .map(|o| (o.kind.clone(), o.name.clone()))
        .collect()
}

const MANAGED: &str = "    upgrade: {backup: {keep: 3}}\n  mysql: {default: {managedMysql: {}}}\n  clickhouse: {default: {managedClickhouse: {}}}\n";
/// The same with an external object store: the dumps go to the backups PVC.
const PVC: &str = "    upgrade: {backup: {keep: 3}}\n  mysql: {default: {managedMysql: {}}}\n  clickhouse: {default: {managedClickhouse: {}}}\n  objectStore: {default: {externalObjectStore: {bucket: {name: b, key: bucket}}}}\n";

#[test]
fn an_upgrade_backs_up_every_managed_database_first_install_and_same_version_do_not() {
    let up = plan(&cr("0.84.0", Some("0.79.0"), PVC));
    assert_eq!(
        backups(&up),
        [
            (
                "Job".to_string(),
                "w-backup-clickhouse-default-0-79-0-0-84-0".to_string()
            ),
            (
                "Job".to_string(),
                "w-backup-mysql-default-0-79-0-0-84-0".to_string()
            ),
            ("PersistentVolumeClaim".to_string(), "w-backups".to_string()),
        ]
    );
    // Backups sort before every migration Job.
    let first_migration = up
        .objects
        .iter()
        .position(|o| o.phase == Phase::Migrations)
        .unwrap();
    let last_backup = up
        .objects
        .iter()
        .rposition(|o| o.phase == Phase::Backups)
        .unwrap();
    assert!(last_backup < first_migration);
    let pvc = up
        .objects
        .iter()
        .find(|o| o.kind == "PersistentVolumeClaim" && o.name == "w-backups")
        .unwrap();
    assert!(pvc.retain, "the backups PVC is data");
    // With a managed object store the dumps go there: no PVC.
    assert_eq!(
        backups(&plan(&cr("0.84.0", Some("0.79.0"), MANAGED)))
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        ["Job", "Job"]
    );

    assert!(
        backups(&plan(&cr("0.84.0", None, MANAGED))).is_empty(),
        "first install"
    );
    assert!(
        backups(&plan(&cr("0.84.0", Some("0.84.0"), MANAGED))).is_empty(),
        "same version"
    );
    let none = MANAGED.replace("keep: 3", "mode: none");
    assert!(
        backups(&plan(&cr("0.84.0", Some("0.79.0"), &none))).is_empty(),
        "mode none"
    );
    let restored = cr("0.79.0", Some("0.84.0"), MANAGED);
    let mut restored = restored;
    restored.metadata.annotations = Some(
        [(
            wandb_engine::names::RESTORED_VERSION_ANNOTATION.to_string(),
            "0.79.0".to_string(),
        )]
        .into(),
    );
    assert!(
        wandb_engine::backends::managed::backup::upgrade_of(&restored).is_none(),
        "returning to a restored version"
    );
}

#[test]
fn the_mysql_backup_job_dumps_with_the_service_image_and_credentials_by_reference() {
    let mut up = plan(&cr("0.84.0", Some("0.79.0"), PVC));
    backup::stamp(&mut up.objects, "20261206T210000Z");
    let job = up
        .objects
        .iter()
        .find(|o| o.name == "w-backup-mysql-default-0-79-0-0-84-0")
        .unwrap();
    let obj = &job.object;
    let c = &obj["spec"]["template"]["spec"]["containers"][0];
    let mysql = up
        .objects
        .iter()
        .find(|o| o.kind == "StatefulSet" && o.name == "w-mysql")
        .unwrap();
    assert_eq!(
        c["image"],
        mysql.object["spec"]["template"]["spec"]["containers"][0]["image"]
    );
    assert_eq!(c["command"][0], "bash");
    assert_eq!(c["command"][1], "-c");
    assert_eq!(
        c["command"][2].as_str().unwrap(),
        backup::dump_script(ServiceKind::Mysql, "w-mysql", "w/mysql-default", 3)
    );
    let env: Vec<&Value> = c["env"].as_array().unwrap().iter().collect();
    assert_eq!(
        env,
        [
            &serde_json::json!({"name": "BACKUP_FILE", "value": "0.79.0-0.84.0-20261206T210000Z.sql.gz"}),
            &serde_json::json!({"name": "MYSQL_ROOT_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "w-mysql-credentials", "key": "root-password"}}}),
        ]
    );
    assert_eq!(
        obj["metadata"]["annotations"][backup::LOCATION_ANNOTATION],
        "w/mysql-default/0.79.0-0.84.0-20261206T210000Z.sql.gz"
    );
    assert_eq!(
        obj["metadata"]["annotations"]["apps.wandb.com/retain"],
        "true"
    );
    assert_eq!(
        obj["metadata"]["labels"][backup::BACKUP_LABEL],
        "mysql-default"
    );
    let spec = &obj["spec"]["template"]["spec"];
    assert_eq!(
        spec["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "w-backups"
    );
    assert_eq!(spec["securityContext"]["runAsUser"], 999);
    assert_eq!(spec["restartPolicy"], "Never");
    assert_eq!(obj["spec"]["backoffLimit"], backup::BACKOFF_LIMIT);
    assert!(!obj.to_string().contains("<time>"), "stamped everywhere");
}

#[test]
fn dump_and_restore_commands() {
    assert_eq!(
        backup::dump_script(ServiceKind::Mysql, "w-mysql", "w/mysql-default", 5),
        r#"set -euo pipefail
dir=/backups/w/mysql-default
mkdir -p "$dir"
part="$dir/.$BACKUP_FILE.partial"
printf '[client]\npassword=%s\n' "$MYSQL_ROOT_PASSWORD" > /tmp/client.cnf
mysqldump --defaults-extra-file=/tmp/client.cnf --host=w-mysql --port=3306 --user=root --single-transaction --routines --events --triggers --add-drop-database --databases wandb_local | gzip > "$part"
mv "$part" "$dir/$BACKUP_FILE"
(cd "$dir" && sha256sum "$BACKUP_FILE" > "$BACKUP_FILE.sha256")
# keep the newest 5 dumps of this service
ls -1t "$dir" | grep -v '\.sha256$' | tail -n +6 | while read -r f; do rm -f "$dir/$f" "$dir/$f.sha256"; done
echo "backup written: $dir/$BACKUP_FILE"
"#
    );
    assert_eq!(
        backup::restore_script(
            ServiceKind::Mysql,
            "w-mysql",
            "w/mysql-default/0.79.0-0.84.0-20261206T210000Z.sql.gz"
        ),
        r#"set -euo pipefail
file=/backups/w/mysql-default/0.79.0-0.84.0-20261206T210000Z.sql.gz
(cd "$(dirname "$file")" && sha256sum -c "$(basename "$file").sha256")
printf '[client]\npassword=%s\n' "$MYSQL_ROOT_PASSWORD" > /tmp/client.cnf
gunzip -c "$file" | mysql --defaults-extra-file=/tmp/client.cnf --host=w-mysql --port=3306 --user=root
echo "restored: $file"
"#
    );
    let ch = backup::dump_script(
        ServiceKind::Clickhouse,
        "w-clickhouse",
        "w/clickhouse-default",
        5,
    );
    assert!(ch.starts_with(
        "set -euo pipefail\ndir=/backups/w/clickhouse-default\nmkdir -p \"$dir\"\npart=\"$dir/.$BACKUP_FILE.partial\"\n\
         printf '<config><user>wandb</user><password>%s</password></config>\\n' \"$CLICKHOUSE_PASSWORD\" > /tmp/client.xml\n\
         q() { clickhouse-client --config-file /tmp/client.xml --host w-clickhouse --port 9000 --database weave \"$@\"; }\n"
    ), "{ch}");
    assert!(ch.contains("SELECT * FROM \\`$t\\` FORMAT Native"));
    assert!(
        ch.contains("engine NOT LIKE '%View'"),
        "views hold no data of their own"
    );
    assert!(ch.contains("tar -C \"$work\" -czf \"$part\" ."));
    assert!(
        !ch.contains("PASSWORD="),
        "the password stays in the environment"
    );
}

#[test]
fn the_restore_job_loads_the_chosen_dump_into_the_managed_mysql() {
    let cr = cr("0.84.0", Some("0.84.0"), PVC);
    let manifest = common::manifest("fixture", "0.84.0");
    let built = wandb_engine::plan(&cr, &manifest, None).unwrap();
    let path = "w/mysql-default/0.79.0-0.84.0-20261206T210000Z.sql.gz";
    let job = wandb_engine::restore_job(
        &cr,
        &manifest,
        &built,
        ServiceKind::Mysql,
        "default",
        path,
        "w-restore-mysql-default-1",
    )
    .unwrap();
    let c = &job.object["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["command"][2].as_str().unwrap(),
        backup::restore_script(ServiceKind::Mysql, "w-mysql", path)
    );
    assert_eq!(
        c["env"][0],
        serde_json::json!({"name": "MYSQL_ROOT_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "w-mysql-credentials", "key": "root-password"}}})
    );
    assert_eq!(job.object["spec"]["backoffLimit"], 0);
    assert_eq!(
        job.object["metadata"]["annotations"][backup::LOCATION_ANNOTATION],
        path
    );
    assert!(
        wandb_engine::restore_job(
            &cr,
            &manifest,
            &built,
            ServiceKind::Redis,
            "default",
            path,
            "x"
        )
        .is_err(),
        "only databases are restored"
    );
}

#[test]
fn with_a_managed_object_store_the_dump_is_uploaded_there() {
    let mut up = plan(&cr(
        "0.84.0",
        Some("0.79.0"),
        &format!("{MANAGED}  global: {{imageRegistry: mirror.example.com}}\n"),
    ));
    backup::stamp(&mut up.objects, "20261206T210000Z");
    let job = up
        .objects
        .iter()
        .find(|o| o.name == "w-backup-mysql-default-0-79-0-0-84-0")
        .unwrap();
    let obj = &job.object;
    let spec = &obj["spec"]["template"]["spec"];
    // The dump first (init container, the MySQL image), then the upload.
    let dump = &spec["initContainers"][0];
    assert_eq!(dump["name"], "backup");
    assert_eq!(
        dump["command"][2].as_str().unwrap(),
        backup::dump_script(ServiceKind::Mysql, "w-mysql", "w/mysql-default", 3)
    );
    let upload = &spec["containers"][0];
    assert_eq!(upload["name"], "upload");
    // The pinned client image, moved under the mirror like every image.
    assert_eq!(
        upload["image"],
        "mirror.example.com/docker.io/amazon/aws-cli:2.27.9"
    );
    assert_eq!(
        upload["command"][2].as_str().unwrap(),
        backup_store::upload_script(backup::MOUNT, "w/mysql-default", 3)
    );
    let env = upload["env"].as_array().unwrap();
    let var = |n: &str| env.iter().find(|e| e["name"] == n).cloned().unwrap();
    assert_eq!(
        var("BACKUP_FILE")["value"],
        "0.79.0-0.84.0-20261206T210000Z.sql.gz"
    );
    assert_eq!(var("S3_ENDPOINT")["value"], "http://w-objectstore:8333");
    assert_eq!(var("BUCKET")["value"], "wandb");
    assert_eq!(
        var("AWS_SECRET_ACCESS_KEY"),
        serde_json::json!({"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "w-objectstore-credentials", "key": "secret-key"}}})
    );
    // The dump never touches a shared volume: an emptyDir in the pod.
    assert!(spec["volumes"][0]["emptyDir"].is_object(), "{spec}");
    assert_eq!(
        obj["metadata"]["annotations"][backup::LOCATION_ANNOTATION],
        "s3://wandb/backups/w/mysql-default/0.79.0-0.84.0-20261206T210000Z.sql.gz"
    );

    // Restore from it: download first, then the checked load.
    let current = cr("0.84.0", Some("0.84.0"), MANAGED);
    let manifest = common::manifest("fixture", "0.84.0");
    let built = wandb_engine::plan(&current, &manifest, None).unwrap();
    let location = "s3://wandb/backups/w/mysql-default/0.79.0-0.84.0-20261206T210000Z.sql.gz";
    let job = wandb_engine::restore_job(
        &current,
        &manifest,
        &built,
        ServiceKind::Mysql,
        "default",
        location,
        "w-restore-mysql-default-1",
    )
    .unwrap();
    let spec = &job.object["spec"]["template"]["spec"];
    let rel = "w/mysql-default/0.79.0-0.84.0-20261206T210000Z.sql.gz";
    assert_eq!(spec["initContainers"][0]["name"], "download");
    assert_eq!(
        spec["initContainers"][0]["command"][2].as_str().unwrap(),
        backup_store::download_script(backup::MOUNT, rel)
    );
    assert_eq!(
        spec["containers"][0]["command"][2].as_str().unwrap(),
        backup::restore_script(ServiceKind::Mysql, "w-mysql", rel)
    );
    // A location in another bucket is refused, not guessed.
    let err = wandb_engine::restore_job(
        &current,
        &manifest,
        &built,
        ServiceKind::Mysql,
        "default",
        "s3://other/backups/w/x.sql.gz",
        "x",
    )
    .unwrap_err();
    assert!(err.contains("not in this instance's object store"), "{err}");
}
