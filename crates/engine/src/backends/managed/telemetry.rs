//! Metrics of managed services (`managedX.telemetry.enabled`, off by default so that turning it
//! on is the only thing that restarts a data service): a Prometheus endpoint per pod, announced
//! by the `prometheus.io/{scrape,port,path}` pod annotations and a `metrics` port on the
//! service's Service.
//!
//! | kind | how | port |
//! |---|---|---|
//! | MySQL | `prom/mysqld-exporter` sidecar, as the W&B user (no extra grants: global status and variables) | 9104 |
//! | Redis | `oliver006/redis_exporter` sidecar | 9121 |
//! | object store | SeaweedFS's own `-metricsPort` | 9327 |
//! | ClickHouse | ClickHouse's own `<prometheus>` endpoint (a `config.d` file) | 9363 |
//! | Kafka | none: the official image ships no metrics exporter | — |

use super::workload::{lit, secret_env};
use super::*;

pub(super) const MYSQL_EXPORTER_PORT: i32 = 9104;
pub(super) const REDIS_EXPORTER_PORT: i32 = 9121;
pub(super) const SEAWEED_METRICS_PORT: i32 = 9327;
pub(super) const CLICKHOUSE_METRICS_PORT: i32 = 9363;

/// What a Workload adds for metrics.
pub(super) struct Metrics {
    pub(super) port: i32,
    pub(super) path: &'static str,
    /// An exporter container (and its image) beside the server; `None` when the server serves
    /// metrics itself.
    pub(super) sidecar: Option<(Container, ImageRef)>,
    /// A configuration file for the server: (mount path, content), from a ConfigMap.
    pub(super) config_file: Option<(&'static str, String)>,
}

/// Whether the CR asks for this managed service's metrics.
pub(super) fn enabled(ctx: &InfraContext, kind: ServiceKind, instance: &str) -> bool {
    managed_settings(ctx.cr, kind, instance)
        .0
        .and_then(|c| c.telemetry.as_ref())
        .and_then(|t| t.enabled)
        .unwrap_or(false)
}

/// The pinned exporter image of a service, when it uses one.
pub fn exporter_image(kind: ServiceKind) -> Option<ImageRef> {
    match kind {
        ServiceKind::Mysql => Some(image("docker.io", "prom/mysqld-exporter", "v0.17.2")),
        ServiceKind::Redis => Some(image("docker.io", "oliver006/redis_exporter", "v1.68.0")),
        _ => None,
    }
}

fn sidecar(
    kind: ServiceKind,
    env: Vec<EnvVar>,
    args: Vec<String>,
    port: i32,
) -> Option<(Container, ImageRef)> {
    let container = Container {
        name: "metrics".into(),
        args: (!args.is_empty()).then_some(args),
        env: Some(env),
        ports: Some(vec![ContainerPort {
            name: Some("metrics".into()),
            container_port: port,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("10m".into())),
                ("memory".to_string(), Quantity("32Mi".into())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".to_string(),
                Quantity("128Mi".into()),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    };
    Some((container, exporter_image(kind)?))
}

pub(super) fn mysql(creds: &str) -> Metrics {
    Metrics {
        port: MYSQL_EXPORTER_PORT,
        path: "/metrics",
        sidecar: sidecar(
            ServiceKind::Mysql,
            vec![secret_env("MYSQLD_EXPORTER_PASSWORD", creds, KEY_PASSWORD)],
            vec![
                format!("--mysqld.address=127.0.0.1:{MYSQL_PORT}"),
                format!("--mysqld.username={MYSQL_USER}"),
                format!("--web.listen-address=:{MYSQL_EXPORTER_PORT}"),
            ],
            MYSQL_EXPORTER_PORT,
        ),
        config_file: None,
    }
}

pub(super) fn redis(creds: &str) -> Metrics {
    Metrics {
        port: REDIS_EXPORTER_PORT,
        path: "/metrics",
        sidecar: sidecar(
            ServiceKind::Redis,
            vec![
                lit("REDIS_ADDR", &format!("redis://127.0.0.1:{REDIS_PORT}")),
                secret_env("REDIS_PASSWORD", creds, KEY_PASSWORD),
                lit(
                    "REDIS_EXPORTER_WEB_LISTEN_ADDRESS",
                    &format!(":{REDIS_EXPORTER_PORT}"),
                ),
            ],
            vec![],
            REDIS_EXPORTER_PORT,
        ),
        config_file: None,
    }
}

pub(super) fn seaweedfs() -> Metrics {
    Metrics {
        port: SEAWEED_METRICS_PORT,
        path: "/metrics",
        sidecar: None,
        config_file: None,
    }
}

/// ClickHouse's `<prometheus>` config; `{port}` is [`CLICKHOUSE_METRICS_PORT`] (one table).
const CLICKHOUSE_PROMETHEUS: &str = "<clickhouse>
  <prometheus>
    <endpoint>/metrics</endpoint>
    <port>{port}</port>
    <metrics>true</metrics>
    <events>true</events>
    <asynchronous_metrics>true</asynchronous_metrics>
  </prometheus>
</clickhouse>
";

pub(super) fn clickhouse() -> Metrics {
    Metrics {
        port: CLICKHOUSE_METRICS_PORT,
        path: "/metrics",
        sidecar: None,
        config_file: Some((
            "/etc/clickhouse-server/config.d/prometheus.xml",
            CLICKHOUSE_PROMETHEUS.replace("{port}", &CLICKHOUSE_METRICS_PORT.to_string()),
        )),
    }
}
