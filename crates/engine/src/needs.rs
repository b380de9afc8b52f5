//! Which backing services a manifest needs: those its enabled applications and migrations read
//! through env sources, plus Kafka when it declares topics. A classic manifest that reads only
//! MySQL, Redis and a bucket gets no ClickHouse or Kafka.

use std::collections::{BTreeMap, BTreeSet};

use wandb_manifest::{EnvSourceType, ServerManifest};

use crate::connection::ServiceKind;

pub fn service_kinds(
    manifest: &ServerManifest,
    features: &BTreeMap<String, bool>,
) -> BTreeSet<ServiceKind> {
    let mut out = BTreeSet::new();
    let mut scan = |vars: Vec<wandb_manifest::EnvVar>| {
        for s in vars.iter().flat_map(|v| &v.sources) {
            let kind = match s.kind {
                EnvSourceType::Mysql => ServiceKind::Mysql,
                EnvSourceType::Redis => ServiceKind::Redis,
                EnvSourceType::Bucket => ServiceKind::ObjectStore,
                EnvSourceType::Clickhouse => ServiceKind::Clickhouse,
                EnvSourceType::Kafka => ServiceKind::Kafka,
                _ => continue,
            };
            out.insert(kind);
        }
    };
    for (name, _) in manifest.enabled_applications(features) {
        scan(manifest.app_env(name).unwrap_or_default());
    }
    for name in manifest.migrations.keys() {
        scan(manifest.migration_env(name).unwrap_or_default());
    }
    if manifest.enabled_topics(features).next().is_some() {
        out.insert(ServiceKind::Kafka);
    }
    out
}
