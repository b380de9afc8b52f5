//! Backing-service connections: the inputs env wiring consumes.
//!
//! A [`Connection`] maps field names (`url`, `host`, `port`, `user`, `password`, ...) to either a
//! literal or a Secret key. The engine derives default connections from the CR (managed services
//! and external ones both publish an operator-owned Secret `<service>-connection`); `render
//! --connections` or the controller may replace them. No secret value is ever held here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::SecretKeySelector;
use serde::{Deserialize, Serialize};

/// The five kinds of backing service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ServiceKind {
    Mysql,
    Redis,
    ObjectStore,
    Clickhouse,
    Kafka,
}

impl ServiceKind {
    pub const ALL: [ServiceKind; 5] = [
        ServiceKind::Mysql,
        ServiceKind::Redis,
        ServiceKind::ObjectStore,
        ServiceKind::Clickhouse,
        ServiceKind::Kafka,
    ];

    /// The CR field (`spec.<key>`) and status key.
    pub fn key(self) -> &'static str {
        match self {
            ServiceKind::Mysql => "mysql",
            ServiceKind::Redis => "redis",
            ServiceKind::ObjectStore => "objectStore",
            ServiceKind::Clickhouse => "clickhouse",
            ServiceKind::Kafka => "kafka",
        }
    }

    /// The CR field that asks for the managed service (`managedMysql`, ...).
    pub fn managed_field(self) -> &'static str {
        match self {
            ServiceKind::Mysql => "managedMysql",
            ServiceKind::Redis => "managedRedis",
            ServiceKind::ObjectStore => "managedObjectStore",
            ServiceKind::Clickhouse => "managedClickhouse",
            ServiceKind::Kafka => "managedKafka",
        }
    }

    /// Suffix of the service's object names.
    pub fn object_suffix(self) -> &'static str {
        match self {
            ServiceKind::Mysql => "mysql",
            ServiceKind::Redis => "redis",
            ServiceKind::ObjectStore => "objectstore",
            ServiceKind::Clickhouse => "clickhouse",
            ServiceKind::Kafka => "kafka",
        }
    }

    /// Fields the service's connection Secret always publishes (possibly empty), so env wiring
    /// may reference any of them unconditionally.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            ServiceKind::Mysql => &["url", "host", "port", "database", "user", "password"],
            ServiceKind::Redis => &["url", "host", "port"],
            ServiceKind::ObjectStore => &["url", "host", "port", "region", "bucket"],
            ServiceKind::Clickhouse => &[
                "url", "host", "httpport", "tcpport", "database", "user", "password",
            ],
            ServiceKind::Kafka => &["url", "host", "port"],
        }
    }

    /// Fields an external connection Secret publishes only when the resource configures them
    /// (`replicated`, `clusterName`, `kmsKey`), with the resource field each one comes from.
    /// Env wiring references such a key only when its field is set, and then as `optional`:
    /// the user's value may be empty or come from an optional Secret key, and the writer leaves
    /// an empty value out. Unset, the env var gets the manifest's `defaultValue` or is left out.
    pub fn optional_fields(self) -> &'static [OptionalField] {
        match self {
            ServiceKind::ObjectStore => &[OptionalField {
                key: "kmskey",
                cr_field: "kmsKey",
            }],
            ServiceKind::Clickhouse => &[
                OptionalField {
                    key: "replicated",
                    cr_field: "replicated",
                },
                OptionalField {
                    key: "clustername",
                    cr_field: "clusterName",
                },
            ],
            ServiceKind::Mysql | ServiceKind::Redis | ServiceKind::Kafka => &[],
        }
    }
}

/// A connection Secret key that exists only when the resource sets `cr_field`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionalField {
    /// The connection Secret key (normalized field name).
    pub key: &'static str,
    /// The field of `spec.<service>.<instance>.external<Service>` it comes from.
    pub cr_field: &'static str,
}

/// One value of a connection: a literal or a Secret key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConnValue {
    Literal(String),
    Secret {
        #[serde(rename = "secretKeyRef")]
        secret_key_ref: SecretKeySelector,
    },
}

impl ConnValue {
    pub fn secret(name: &str, key: &str) -> Self {
        ConnValue::Secret {
            secret_key_ref: SecretKeySelector {
                name: name.to_string(),
                key: key.to_string(),
                optional: None,
            },
        }
    }

    /// A Secret key that may be absent: the kubelet then leaves the env var out instead of
    /// refusing to start the container.
    pub fn optional_secret(name: &str, key: &str) -> Self {
        ConnValue::Secret {
            secret_key_ref: SecretKeySelector {
                name: name.to_string(),
                key: key.to_string(),
                optional: Some(true),
            },
        }
    }
}

/// A service instance's connection, by normalized field name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    #[serde(flatten)]
    pub values: BTreeMap<String, ConnValue>,
}

impl Connection {
    /// Looks a field up by any of its spellings (`HTTPPort`, `http-port`, `httpPort`).
    pub fn get(&self, field: &str) -> Option<&ConnValue> {
        let wanted = normalize_field(field);
        self.values
            .iter()
            .find(|(k, _)| normalize_field(k) == wanted)
            .map(|(_, v)| v)
    }
}

/// Field names compare case-insensitively, without `-`/`_`, with common aliases folded.
pub fn normalize_field(field: &str) -> String {
    let f: String = field
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect();
    match f.as_str() {
        "username" => "user".into(),
        "pass" => "password".into(),
        "replicatedcluster" => "clustername".into(),
        "db" => "database".into(),
        _ => f,
    }
}

/// Every connection of an instance, keyed by service kind and instance name, plus the telemetry
/// settings (`OTEL_*` endpoints, exporters, `GORILLA_TRACER`, ...) that `telemetry` sources read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Connections {
    pub map: BTreeMap<(ServiceKind, String), Connection>,
    pub telemetry: Option<Connection>,
}

impl Connections {
    /// The connection of `instance`, falling back to `default` like the official operator.
    pub fn lookup(&self, kind: ServiceKind, instance: &str) -> Option<&Connection> {
        self.map
            .get(&(kind, instance.to_string()))
            .or_else(|| self.map.get(&(kind, "default".to_string())))
    }

    /// Replaces (per field) the connections given in `other`.
    pub fn overlay(&mut self, other: Connections) {
        for (key, conn) in other.map {
            self.map.entry(key).or_default().values.extend(conn.values);
        }
        if let Some(t) = other.telemetry {
            self.telemetry
                .get_or_insert_with(Connection::default)
                .values
                .extend(t.values);
        }
    }

    /// Parses a connections file: `{mysql: {default: {url: ..., host: ...}}, objectStore: ...,
    /// telemetry: {tracesEndpoint: ...}}`, where each value is a literal or
    /// `{secretKeyRef: {name, key}}`.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        struct File {
            #[serde(default)]
            mysql: BTreeMap<String, Connection>,
            #[serde(default)]
            redis: BTreeMap<String, Connection>,
            #[serde(default)]
            object_store: BTreeMap<String, Connection>,
            #[serde(default)]
            clickhouse: BTreeMap<String, Connection>,
            #[serde(default)]
            kafka: BTreeMap<String, Connection>,
            #[serde(default)]
            telemetry: Option<Connection>,
        }
        let file: File = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        let mut out = Connections {
            telemetry: file.telemetry,
            ..Default::default()
        };
        for (kind, instances) in [
            (ServiceKind::Mysql, file.mysql),
            (ServiceKind::Redis, file.redis),
            (ServiceKind::ObjectStore, file.object_store),
            (ServiceKind::Clickhouse, file.clickhouse),
            (ServiceKind::Kafka, file.kafka),
        ] {
            for (instance, conn) in instances {
                out.map.insert((kind, instance), conn);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_match_across_spellings() {
        let mut c = Connection::default();
        c.values
            .insert("HTTPPort".into(), ConnValue::Literal("8123".into()));
        c.values
            .insert("Username".into(), ConnValue::Literal("u".into()));
        assert!(c.get("http-port").is_some());
        assert!(c.get("user").is_some());
        assert!(c.get("tcp-port").is_none());
    }

    #[test]
    fn lookup_falls_back_to_default() {
        let mut cs = Connections::default();
        cs.map.insert(
            (ServiceKind::Mysql, "default".into()),
            Connection::default(),
        );
        assert!(cs.lookup(ServiceKind::Mysql, "runs").is_some());
        assert!(cs.lookup(ServiceKind::Redis, "default").is_none());
    }

    #[test]
    fn parses_a_connections_file() {
        let cs = Connections::from_yaml(
            "mysql:\n  default:\n    host: db.example.com\n    url:\n      secretKeyRef: {name: db, key: url}\n",
        )
        .unwrap();
        let c = cs.lookup(ServiceKind::Mysql, "default").unwrap();
        assert_eq!(
            c.get("host"),
            Some(&ConnValue::Literal("db.example.com".into()))
        );
        assert_eq!(c.get("url"), Some(&ConnValue::secret("db", "url")));
    }
}
