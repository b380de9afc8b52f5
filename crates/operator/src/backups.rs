//! Upgrade backup Jobs: the last `spec.wandb.upgrade.backup.keep` per service stay (their dumps
//! are in the backups PVC, pruned by the dump script itself); a Job of an abandoned or rolled
//! back upgrade goes, so that the next attempt takes a fresh dump. Which ones is decided in
//! [`wandb_engine::decide::backups::retired`]; the Jobs are read from the watch caches.

use kube::ResourceExt;
use wandb_api::WeightsAndBiases;
use wandb_engine::backends::managed::backup;
use wandb_engine::decide::backups::{KeptJob, retired};

use crate::apply::Applier;

/// Deletes the backup Jobs [`retired`] names; returns their names.
pub async fn retire(
    applier: &Applier,
    cr: &WeightsAndBiases,
    last_success: Option<&str>,
) -> Result<Vec<String>, kube::Error> {
    let jobs: Vec<KeptJob> = applier
        .owned("batch/v1", "Job", &cr.name_any())
        .await?
        .into_iter()
        .filter(|m| m.deletion_timestamp.is_none())
        .filter_map(|m| {
            let labels = m.labels.as_ref()?;
            let annotations = m.annotations.as_ref()?;
            Some(KeptJob {
                name: m.name.clone()?,
                service: labels.get(backup::BACKUP_LABEL)?.clone(),
                from: annotations.get(backup::FROM_ANNOTATION)?.clone(),
                to: annotations.get(backup::TO_ANNOTATION)?.clone(),
                created: m
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .unwrap_or_default(),
            })
        })
        .collect();
    let upgrade = backup::upgrade_of(cr);
    let mut gone = Vec::new();
    for name in retired(
        &jobs,
        last_success,
        upgrade.as_ref().map(|u| u.to.as_str()),
        backup::keep(cr),
    ) {
        if applier.delete("batch/v1", "Job", &name).await? {
            gone.push(name);
        }
    }
    Ok(gone)
}

/// Picks the record of `status.wandb.backups` that `id` names: its exact location, or the one
/// location ending with `id` (a file name, or `<from>-<to>-<time>`).
pub fn find_record<'a>(
    records: &'a [wandb_api::BackupRecord],
    id: &str,
) -> Result<&'a wandb_api::BackupRecord, String> {
    let dumps: Vec<_> = records.iter().filter(|r| r.job.is_some()).collect();
    if let Some(r) = dumps.iter().find(|r| r.location == id) {
        return Ok(r);
    }
    let matching: Vec<_> = dumps
        .iter()
        .filter(|r| r.location.ends_with(id) || r.location.contains(&format!("/{id}.")))
        .collect();
    let known = || {
        dumps
            .iter()
            .map(|r| r.location.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match matching.as_slice() {
        [one] => Ok(one),
        [] => Err(format!(
            "no backup {id} in status.wandb.backups (known: {})",
            if dumps.is_empty() {
                "none".into()
            } else {
                known()
            }
        )),
        _ => Err(format!("{id} names several backups: {}", known())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wandb_api::BackupRecord;

    fn rec(service: &str, location: &str, job: bool) -> BackupRecord {
        BackupRecord {
            from_version: "0.79.0".into(),
            to_version: "0.84.0".into(),
            service: service.into(),
            location: location.into(),
            job: job.then(|| "j".to_string()),
            time: None,
        }
    }

    #[test]
    fn a_backup_is_found_by_location_or_a_unique_end_of_it() {
        let records = [
            rec(
                "mysql-default",
                "w/mysql-default/0.79.0-0.84.0-20261206T210000Z.sql.gz",
                true,
            ),
            rec(
                "clickhouse-default",
                "w/clickhouse-default/0.79.0-0.84.0-20261206T210000Z.tar.gz",
                true,
            ),
            rec("external", "snap-1", false),
        ];
        let full = "w/mysql-default/0.79.0-0.84.0-20261206T210000Z.sql.gz";
        assert_eq!(
            find_record(&records, full).unwrap().service,
            "mysql-default"
        );
        assert_eq!(
            find_record(&records, "0.79.0-0.84.0-20261206T210000Z.tar.gz")
                .unwrap()
                .service,
            "clickhouse-default"
        );
        let e = find_record(&records, "0.79.0-0.84.0-20261206T210000Z").unwrap_err();
        assert!(e.contains("several"), "{e}");
        let e = find_record(&records, "snap-1").unwrap_err();
        assert!(
            e.contains("no backup snap-1"),
            "an acknowledged snapshot is not restorable: {e}"
        );
    }
}
