//! Which retention policy applies to one retained object (generated credentials, volumes) when
//! the resource is deleted: its managed service's `retentionPolicy`, else `spec.retentionPolicy`.
//! Decided from the resource alone, so deletion never depends on loading a manifest.

use wandb_api::{RetentionPolicy, WeightsAndBiases};

use crate::instance::{Instance, Mode};

use super::managed;

/// The policy for the retained object `kind`/`name` of `cr`.
pub fn policy_for(cr: &WeightsAndBiases, kind: &str, name: &str) -> RetentionPolicy {
    let default = cr
        .spec
        .retention_policy
        .as_ref()
        .map(|r| r.on_delete)
        .unwrap_or_default();
    let Ok(inst) = Instance::from_cr(cr) else {
        return default;
    };
    // Upgrade backups outlive even `purge` unless their own policy asks for it.
    if kind == "PersistentVolumeClaim" && name == managed::backup::pvc_name(&inst) {
        return managed::backup::pvc_policy(cr);
    }
    for (svc_kind, instance) in inst
        .services
        .iter()
        .filter(|(_, mode)| **mode == Mode::Managed)
        .map(|(k, _)| k)
    {
        let service = inst.service_name(*svc_kind, instance);
        let belongs = match kind {
            "Secret" => {
                name == managed::credentials_secret(&inst, *svc_kind, instance)
                    || name == inst.connection_secret(*svc_kind, instance)
            }
            "PersistentVolumeClaim" => is_volume_of(name, &service),
            _ => false,
        };
        if belongs {
            let policy = managed::managed_settings(cr, *svc_kind, instance)
                .0
                .and_then(|c| c.retention_policy.as_ref())
                .map_or(default, |r| r.on_delete);
            // The managed object store's volume holds the upgrade backups once any was taken
            // there: it outlives `purge` too, unless the backups' own policy asks for it.
            if kind == "PersistentVolumeClaim"
                && *svc_kind == crate::ServiceKind::ObjectStore
                && holds_backups(cr)
                && managed::backup::pvc_policy(cr) == RetentionPolicy::Detach
            {
                return RetentionPolicy::Detach;
            }
            return policy;
        }
    }
    default
}

/// The status records an upgrade backup kept in the managed object store.
fn holds_backups(cr: &WeightsAndBiases) -> bool {
    cr.status
        .as_ref()
        .and_then(|s| s.wandb.as_ref())
        .is_some_and(|w| w.backups.iter().any(|b| b.location.starts_with("s3://")))
}

/// `<claim template>-<statefulset>-<ordinal>`: the name the StatefulSet controller gives a
/// volume of [`managed::VOLUME_CLAIM`].
fn is_volume_of(pvc: &str, statefulset: &str) -> bool {
    pvc.strip_prefix(managed::VOLUME_CLAIM)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.strip_prefix(statefulset))
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|ordinal| !ordinal.is_empty() && ordinal.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cr(extra: &str) -> WeightsAndBiases {
        serde_saphyr::from_str(&format!(
            "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {{name: w, namespace: n}}\nspec:\n  retentionPolicy: {{onDelete: detach}}\n  wandb: {{hostname: https://w.example.com, version: \"0.84.0\"}}\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn a_service_policy_overrides_the_instance_policy_for_its_own_data_only() {
        let c = cr(concat!(
            "  mysql: {default: {managedMysql: {retentionPolicy: {onDelete: purge}}}}\n",
            "  redis: {cache: {managedRedis: {name: hot, retentionPolicy: {onDelete: purge}}}}\n",
        ));
        let purge = RetentionPolicy::Purge;
        let detach = RetentionPolicy::Detach;
        for (kind, name, want) in [
            ("Secret", "w-mysql-credentials", purge),
            ("Secret", "w-mysql-connection", purge),
            ("PersistentVolumeClaim", "data-w-mysql-0", purge),
            ("PersistentVolumeClaim", "data-hot-0", purge),
            ("Secret", "hot-credentials", purge),
            // Other services and app secrets follow spec.retentionPolicy.
            ("PersistentVolumeClaim", "data-w-objectstore-0", detach),
            ("Secret", "w-objectstore-credentials", detach),
            ("Secret", "w-gorilla-session-key", detach),
            // Names that merely start like a service's volume are not its volume.
            ("PersistentVolumeClaim", "data-w-mysql-old-0", detach),
            ("PersistentVolumeClaim", "data-w-mysql-", detach),
        ] {
            assert_eq!(policy_for(&c, kind, name), want, "{kind} {name}");
        }
    }

    #[test]
    fn the_object_store_volume_outlives_purge_while_it_holds_upgrade_backups() {
        let volume = |backup: &str, status: &str| {
            let c: WeightsAndBiases = serde_saphyr::from_str(&format!(
                "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {{name: w, namespace: n}}\n\
                 spec:\n  retentionPolicy: {{onDelete: purge}}\n  objectStore: {{default: {{managedObjectStore: {{}}}}}}\n  \
                 wandb: {{hostname: https://w.example.com, version: \"0.84.0\"{backup}}}\n{status}"
            ))
            .unwrap();
            policy_for(&c, "PersistentVolumeClaim", "data-w-objectstore-0")
        };
        let status = "status:\n  wandb:\n    backups: [{fromVersion: 0.79.0, toVersion: 0.84.0, \
                      service: mysql-default, location: s3://wandb/backups/w/mysql-default/x.sql.gz}]\n";
        assert_eq!(volume("", ""), RetentionPolicy::Purge, "no backups in it");
        assert_eq!(volume("", status), RetentionPolicy::Detach, "backups kept");
        let asked = ", upgrade: {backup: {retentionPolicy: {onDelete: purge}}}";
        assert_eq!(volume(asked, status), RetentionPolicy::Purge, "asked for");
    }

    #[test]
    fn without_overrides_the_instance_policy_applies() {
        let c = cr("  mysql: {default: {managedMysql: {}}}\n");
        assert_eq!(
            policy_for(&c, "PersistentVolumeClaim", "data-w-mysql-0"),
            RetentionPolicy::Detach
        );
    }
}
