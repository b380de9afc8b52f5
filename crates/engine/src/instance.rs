//! The CR, with defaults applied, as the values build needs: one place that decides defaults so
//! `render`, the controller and the tests agree.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Affinity, LocalObjectReference, Toleration};
use wandb_api::{NetworkingMode, RetentionPolicy, WeightsAndBiases};

use crate::EngineError;
use crate::connection::{ConnValue, Connection, Connections, ServiceKind};
use crate::names;

/// Default issuer of Kubernetes service-account tokens.
pub const DEFAULT_OIDC_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// How one backing-service instance is provided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Managed,
    External,
}

/// The CR with defaults resolved.
#[derive(Clone, Debug)]
pub struct Instance {
    pub name: String,
    pub namespace: String,
    pub version: String,
    /// The manifest's sizing key (`2xlarge` for `xxlarge`).
    pub size_key: &'static str,
    pub require_limits: bool,
    pub retention: RetentionPolicy,
    /// Public URL without a trailing slash.
    pub url: String,
    /// Host part of the public URL.
    pub host: String,
    pub additional_hosts: Vec<String>,
    pub image_registry: Option<String>,
    pub pull_secrets: Vec<LocalObjectReference>,
    pub service_account: String,
    pub create_service_account: bool,
    pub internal_auth: Option<String>,
    pub networking: NetworkingMode,
    pub affinity: Option<Affinity>,
    pub tolerations: Vec<Toleration>,
    /// Each declared (or defaulted) backing-service instance and its mode.
    pub services: BTreeMap<(ServiceKind, String), Mode>,
    /// Managed services the CR names (`managedX.name`), replacing `<cr>[-<instance>]-<kind>`.
    pub service_names: BTreeMap<(ServiceKind, String), String>,
    /// Optional connection keys ([`ServiceKind::optional_fields`]) each external service
    /// instance configures, so its connection Secret may carry them.
    pub optional_keys: BTreeMap<(ServiceKind, String), BTreeSet<&'static str>>,
}

impl Instance {
    pub fn from_cr(cr: &WeightsAndBiases) -> Result<Self, EngineError> {
        let name = cr
            .metadata
            .name
            .clone()
            .ok_or_else(|| EngineError::invalid("metadata.name", "is required"))?;
        let namespace = cr
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let spec = &cr.spec;
        let url = spec.wandb.hostname.trim_end_matches('/').to_string();
        let host = host_of(&url).ok_or_else(|| {
            EngineError::invalid(
                "spec.wandb.hostname",
                "must be a URL such as https://wandb.example.com",
            )
        })?;
        let global = spec.global.clone().unwrap_or_default();
        let sa = spec.wandb.service_account.clone().unwrap_or_default();
        let auth = spec.wandb.internal_service_auth.clone().unwrap_or_default();
        let services = declared_services(cr);
        let service_names = managed_service_names(cr, &services, &namespace)?;
        crate::backends::managed::single_node::check(cr, &services)?;
        let optional_keys = optional_keys(cr, &services);
        let inst = Instance {
            version: spec.wandb.version.clone(),
            size_key: spec.size.unwrap_or_default().manifest_key(),
            require_limits: spec.require_limits.unwrap_or(false),
            retention: spec
                .retention_policy
                .as_ref()
                .map(|r| r.on_delete)
                .unwrap_or_default(),
            additional_hosts: spec.wandb.additional_hostnames.clone().unwrap_or_default(),
            image_registry: global.image_registry.clone(),
            pull_secrets: global.image_pull_secrets.clone().unwrap_or_default(),
            service_account: sa
                .service_account_name
                .clone()
                .unwrap_or_else(|| names::scoped(&name, "app")),
            create_service_account: sa.create.unwrap_or(true),
            internal_auth: auth.enabled.unwrap_or(true).then(|| {
                auth.oidc_issuer
                    .clone()
                    .unwrap_or_else(|| DEFAULT_OIDC_ISSUER.into())
            }),
            networking: spec
                .networking
                .as_ref()
                .and_then(|n| n.mode)
                .unwrap_or_default(),
            affinity: spec.affinity.clone(),
            tolerations: spec.tolerations.clone().unwrap_or_default(),
            services,
            service_names,
            optional_keys,
            url,
            host,
            name,
            namespace,
        };
        inst.check_service_names_unique()?;
        Ok(inst)
    }

    /// Two services with one name would overwrite each other's StatefulSet, Service and
    /// credentials: refused before anything is built.
    fn check_service_names_unique(&self) -> Result<(), EngineError> {
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (kind, instance) in self.services.keys() {
            let name = self.service_name(*kind, instance);
            let path = format!("spec.{}.{instance}", kind.key());
            if let Some(other) = seen.insert(name.clone(), path.clone()) {
                return Err(EngineError::invalid(
                    format!("{path}.name"),
                    format!(
                        "{name:?} is already the name of {other}; give each service its own name"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Name of a backing service's objects: the managed service's `name`, else
    /// `<cr>[-<instance>]-<kind>`.
    pub fn service_name(&self, kind: ServiceKind, instance: &str) -> String {
        if let Some(name) = self.service_names.get(&(kind, instance.to_string())) {
            return name.clone();
        }
        if instance == "default" {
            names::scoped(&self.name, kind.object_suffix())
        } else {
            names::scoped(&self.name, &format!("{instance}-{}", kind.object_suffix()))
        }
    }

    /// The operator-owned Secret that publishes a service's connection.
    pub fn connection_secret(&self, kind: ServiceKind, instance: &str) -> String {
        format!("{}-connection", self.service_name(kind, instance))
    }

    /// Default connections: every field of [`ServiceKind::fields`] a Secret key of the connection
    /// Secret, except the non-secret coordinates of managed services, which are known in
    /// advance; plus, as optional references, the optional keys the resource configures. A key
    /// the writer may leave out is never a required reference.
    pub fn default_connections(&self) -> Connections {
        let mut out = Connections::default();
        for (&(kind, ref inst), &mode) in &self.services {
            let secret = self.connection_secret(kind, inst);
            let mut conn = Connection::default();
            for field in kind.fields() {
                conn.values
                    .insert((*field).to_string(), ConnValue::secret(&secret, field));
            }
            if mode == Mode::Managed {
                let host = format!(
                    "{}.{}.svc.cluster.local",
                    self.service_name(kind, inst),
                    self.namespace
                );
                let (port, extra): (&str, &[(&str, &str)]) = match kind {
                    ServiceKind::Mysql => {
                        ("3306", &[("database", "wandb_local"), ("user", "wandb")])
                    }
                    ServiceKind::Redis => ("6379", &[]),
                    ServiceKind::ObjectStore => {
                        ("8333", &[("region", "us-east-1"), ("bucket", "wandb")])
                    }
                    ServiceKind::Clickhouse => (
                        "8123",
                        &[
                            ("httpport", "8123"),
                            ("tcpport", "9000"),
                            ("database", "weave"),
                            ("user", "wandb"),
                            ("replicated", "false"),
                        ],
                    ),
                    ServiceKind::Kafka => ("9092", &[]),
                };
                conn.values.insert("host".into(), ConnValue::Literal(host));
                conn.values
                    .insert("port".into(), ConnValue::Literal(port.into()));
                for (k, v) in extra {
                    conn.values
                        .insert((*k).into(), ConnValue::Literal((*v).into()));
                }
            } else {
                for key in self.configured_optional_keys(kind, inst) {
                    conn.values
                        .insert(key.into(), ConnValue::optional_secret(&secret, key));
                }
            }
            out.map.insert((kind, inst.clone()), conn);
        }
        out
    }

    /// The optional keys an external instance's connection Secret may carry (none when managed).
    pub fn configured_optional_keys(
        &self,
        kind: ServiceKind,
        instance: &str,
    ) -> impl Iterator<Item = &'static str> + '_ {
        self.optional_keys
            .get(&(kind, instance.to_string()))
            .into_iter()
            .flatten()
            .copied()
    }

    pub fn mode(&self, kind: ServiceKind, instance: &str) -> Option<Mode> {
        self.services
            .get(&(kind, instance.to_string()))
            .or_else(|| self.services.get(&(kind, "default".to_string())))
            .copied()
    }
}

/// Each service instance the CR declares; a kind the CR leaves out gets a managed `default`.
fn declared_services(cr: &WeightsAndBiases) -> BTreeMap<(ServiceKind, String), Mode> {
    let spec = &cr.spec;
    let mut out = BTreeMap::new();
    let mut add = |kind: ServiceKind, entries: Option<Vec<(String, bool)>>| match entries {
        Some(list) if !list.is_empty() => {
            for (inst, managed) in list {
                out.insert(
                    (kind, inst),
                    if managed {
                        Mode::Managed
                    } else {
                        Mode::External
                    },
                );
            }
        }
        _ => {
            out.insert((kind, "default".to_string()), Mode::Managed);
        }
    };
    add(
        ServiceKind::Mysql,
        spec.mysql.as_ref().map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.external_mysql.is_none()))
                .collect()
        }),
    );
    add(
        ServiceKind::Redis,
        spec.redis.as_ref().map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.external_redis.is_none()))
                .collect()
        }),
    );
    add(
        ServiceKind::ObjectStore,
        spec.object_store.as_ref().map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.external_object_store.is_none()))
                .collect()
        }),
    );
    add(
        ServiceKind::Clickhouse,
        spec.clickhouse.as_ref().map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.external_clickhouse.is_none()))
                .collect()
        }),
    );
    add(
        ServiceKind::Kafka,
        spec.kafka
            .as_ref()
            .map(|k| vec![("default".to_string(), k.external_kafka.is_none())]),
    );
    out
}

/// `managedX.name` of each managed service that sets one. A `managedX.namespace` other than the
/// resource's is refused: services run beside the apps, so owner references (garbage
/// collection, retention) and the namespaced RBAC keep working.
fn managed_service_names(
    cr: &WeightsAndBiases,
    services: &BTreeMap<(ServiceKind, String), Mode>,
    namespace: &str,
) -> Result<BTreeMap<(ServiceKind, String), String>, EngineError> {
    let mut out = BTreeMap::new();
    for ((kind, instance), mode) in services {
        if *mode != Mode::Managed {
            continue;
        }
        let (Some(common), _) = crate::backends::managed::managed_settings(cr, *kind, instance)
        else {
            continue;
        };
        let path = match kind {
            ServiceKind::Kafka => format!("spec.kafka.{}", kind.managed_field()),
            _ => format!("spec.{}.{instance}.{}", kind.key(), kind.managed_field()),
        };
        if let Some(ns) = common
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty() && *n != namespace)
        {
            return Err(EngineError::invalid(
                format!("{path}.namespace"),
                format!(
                    "{ns:?} is not supported: managed services run in the resource's namespace {namespace:?}; remove the field or set it to {namespace:?}"
                ),
            ));
        }
        if let Some(name) = common.name.as_deref().filter(|n| !n.is_empty()) {
            out.insert((*kind, instance.clone()), names::dns_label(name));
        }
    }
    Ok(out)
}

/// The optional connection keys each external instance's resource fields configure.
fn optional_keys(
    cr: &WeightsAndBiases,
    services: &BTreeMap<(ServiceKind, String), Mode>,
) -> BTreeMap<(ServiceKind, String), BTreeSet<&'static str>> {
    let mut out = BTreeMap::new();
    for ((kind, instance), mode) in services {
        if *mode != Mode::External {
            continue;
        }
        let set: BTreeSet<&'static str> = crate::backends::external::selectors(cr, *kind, instance)
            .iter()
            .filter_map(|(field, _)| {
                kind.optional_fields()
                    .iter()
                    .find(|o| o.cr_field == *field)
                    .map(|o| o.key)
            })
            .collect();
        if !set.is_empty() {
            out.insert((*kind, instance.clone()), set);
        }
    }
    out
}

/// Host part of `scheme://host[:port][/]`.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let hostport = rest.split('/').next()?;
    let host = hostport.rsplit_once(':').map_or(hostport, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            hostport
        }
    });
    (!host.is_empty()).then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_extracted() {
        assert_eq!(
            host_of("https://wandb.example.com").as_deref(),
            Some("wandb.example.com")
        );
        assert_eq!(
            host_of("http://localhost:8080/").as_deref(),
            Some("localhost")
        );
        assert_eq!(host_of("wandb.example.com"), None);
    }
}
