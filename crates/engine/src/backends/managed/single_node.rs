//! The managed services are single nodes. The CRD refuses the official operator's settings for
//! more (replicas above 1, extra copies, a Keeper, sentinel, Kafka metrics), but a resource
//! stored before our CRD replaced the official one keeps them: the API server re-checks only
//! the fields an update changes. Such a value is refused here too, so that it is never
//! accepted and silently ignored: the instance stalls naming the field, and nothing changes
//! until it is removed (or the service made external).

use std::collections::BTreeMap;

use wandb_api::WeightsAndBiases;

use crate::connection::ServiceKind;
use crate::error::EngineError;
use crate::instance::Mode;

/// The first single-node setting a managed service of `cr` goes beyond, as a `Stalled` error.
pub fn check(
    cr: &WeightsAndBiases,
    services: &BTreeMap<(ServiceKind, String), Mode>,
) -> Result<(), EngineError> {
    for ((kind, instance), mode) in services {
        if *mode != Mode::Managed {
            continue;
        }
        let base = match kind {
            ServiceKind::Kafka => format!("spec.kafka.{}", kind.managed_field()),
            _ => format!("spec.{}.{instance}.{}", kind.key(), kind.managed_field()),
        };
        if let Some((field, what)) = beyond_single_node(cr, *kind, instance) {
            return Err(EngineError::invalid(
                format!("{base}.{field}"),
                format!(
                    "{what} is not supported: the built-in service is a single node; remove it (this resource was stored before wandb-operator's CRD refused it)"
                ),
            ));
        }
    }
    Ok(())
}

/// (field under the managed spec, the offending value) of the first setting beyond one node.
fn beyond_single_node(
    cr: &WeightsAndBiases,
    kind: ServiceKind,
    instance: &str,
) -> Option<(&'static str, String)> {
    let s = &cr.spec;
    let above = |field: &'static str, v: Option<i32>, max: i32| {
        v.filter(|n| *n > max).map(|n| (field, n.to_string()))
    };
    match kind {
        ServiceKind::Mysql => {
            let m = s.mysql.as_ref()?.get(instance)?.managed_mysql.as_ref()?;
            above("replicas", m.replicas, 1)
        }
        ServiceKind::Redis => {
            let m = s.redis.as_ref()?.get(instance)?.managed_redis.as_ref()?;
            let enabled = m.sentinel.as_ref().and_then(|x| x.enabled) == Some(true);
            enabled.then(|| ("sentinel.enabled", "true (Redis Sentinel)".to_string()))
        }
        ServiceKind::ObjectStore => {
            let m = s
                .object_store
                .as_ref()?
                .get(instance)?
                .managed_object_store
                .as_ref()?;
            above("replicas", m.replicas, 1).or_else(|| above("copies", m.copies, 0))
        }
        ServiceKind::Clickhouse => {
            let m = s
                .clickhouse
                .as_ref()?
                .get(instance)?
                .managed_clickhouse
                .as_ref()?;
            let keeper = m
                .keeper
                .as_ref()
                .filter(|k| k.replicas.is_some() || k.storage_size.is_some());
            above("replicas", m.replicas, 1)
                .or_else(|| keeper.map(|_| ("keeper", "a ClickHouse Keeper".to_string())))
        }
        ServiceKind::Kafka => {
            let m = s.kafka.as_ref()?.managed_kafka.as_ref()?;
            let metrics = m.common.telemetry.as_ref().and_then(|t| t.enabled) == Some(true);
            above("replicas", m.replicas, 1).or_else(|| {
                metrics.then(|| ("telemetry.enabled", "true (Kafka metrics)".to_string()))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cr(services: &str) -> WeightsAndBiases {
        serde_saphyr::from_str(&format!(
            "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {{name: w, namespace: n}}\nspec:\n  wandb: {{hostname: https://w.example.com, version: \"0.84.0\"}}\n{services}"
        ))
        .unwrap()
    }

    fn managed(kind: ServiceKind) -> BTreeMap<(ServiceKind, String), Mode> {
        BTreeMap::from([((kind, "default".to_string()), Mode::Managed)])
    }

    #[test]
    fn settings_beyond_one_node_stall_naming_the_field_and_single_node_values_pass() {
        for (kind, yaml, field) in [
            (
                ServiceKind::Mysql,
                "  mysql: {default: {managedMysql: {replicas: 3}}}",
                "spec.mysql.default.managedMysql.replicas",
            ),
            (
                ServiceKind::Redis,
                "  redis: {default: {managedRedis: {sentinel: {enabled: true}}}}",
                "spec.redis.default.managedRedis.sentinel.enabled",
            ),
            (
                ServiceKind::ObjectStore,
                "  objectStore: {default: {managedObjectStore: {copies: 1}}}",
                "spec.objectStore.default.managedObjectStore.copies",
            ),
            (
                ServiceKind::Clickhouse,
                "  clickhouse: {default: {managedClickhouse: {keeper: {replicas: 3}}}}",
                "spec.clickhouse.default.managedClickhouse.keeper",
            ),
            (
                ServiceKind::Kafka,
                "  kafka: {managedKafka: {telemetry: {enabled: true}}}",
                "spec.kafka.managedKafka.telemetry.enabled",
            ),
        ] {
            let e = check(&cr(yaml), &managed(kind)).unwrap_err();
            assert_eq!(e.field, field);
            assert!(e.message.contains("is not supported"), "{}", e.message);
            // The same setting on an external (or undeclared) service is not looked at.
            assert!(check(&cr(yaml), &BTreeMap::new()).is_ok());
        }
        for (kind, yaml) in [
            (
                ServiceKind::Mysql,
                "  mysql: {default: {managedMysql: {replicas: 1}}}",
            ),
            (
                ServiceKind::Redis,
                "  redis: {default: {managedRedis: {sentinel: {enabled: false}}}}",
            ),
            (
                ServiceKind::ObjectStore,
                "  objectStore: {default: {managedObjectStore: {replicas: 1, copies: 0}}}",
            ),
            (
                ServiceKind::Clickhouse,
                "  clickhouse: {default: {managedClickhouse: {replicas: 1, keeper: {}}}}",
            ),
            (
                ServiceKind::Kafka,
                "  kafka: {managedKafka: {replicas: 1, telemetry: {enabled: false}}}",
            ),
        ] {
            assert!(check(&cr(yaml), &managed(kind)).is_ok(), "{yaml}");
        }
    }
}
