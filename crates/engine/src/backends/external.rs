//! External services: the user's MySQL, Redis, object store, ClickHouse or Kafka.
//!
//! No objects are built. The controller resolves [`selectors`] (the user's Secret keys), sets
//! each value into the [`ConnInputs`] from [`inputs_template`] with [`ConnInputs::set`], and
//! writes [`super::url::connection_secret_data`] into the connection Secret. Its existence is
//! the readiness fact. Certificates named by the URLs are mounted by [`super::certs`].

use k8s_openapi::api::core::v1::SecretKeySelector;
use wandb_api::WeightsAndBiases;

use super::url::ConnInputs;
use super::{Backend, InfraContext, InfraPlan, connection_spec};
use crate::connection::ServiceKind;
use crate::desired::{DesiredObject, SecretSpec};
use crate::instance::Mode;

/// The external backend of one service kind; the per-kind part is which CR fields it reads
/// ([`selectors`]) and how its URL is composed ([`super::url::url`]).
pub struct External {
    kind: ServiceKind,
    instance: String,
}

impl External {
    pub fn new(kind: ServiceKind, instance: &str) -> Self {
        External {
            kind,
            instance: instance.to_string(),
        }
    }
}

impl Backend for External {
    fn kind(&self) -> ServiceKind {
        self.kind
    }
    fn instance(&self) -> &str {
        &self.instance
    }
    fn mode(&self) -> Mode {
        Mode::External
    }
    fn desired(&self, _ctx: &InfraContext) -> Vec<DesiredObject> {
        Vec::new()
    }
    fn secrets(&self, ctx: &InfraContext) -> Vec<SecretSpec> {
        vec![connection_spec(
            ctx.inst,
            self.kind,
            &self.instance,
            Mode::External,
            ctx.inst.retention,
        )]
    }
    fn plan(&self, ctx: &InfraContext) -> InfraPlan {
        InfraPlan {
            kind: self.kind,
            instance: self.instance.clone(),
            mode: Mode::External,
            service_name: ctx.inst.service_name(self.kind, &self.instance),
            statefulset_name: None,
            setup_jobs: Vec::new(),
            connection_secret: ctx.inst.connection_secret(self.kind, &self.instance),
            credentials_secret: None,
            retention: ctx.inst.retention,
        }
    }
}

/// The user's Secret keys of an external service instance, as (input field, selector); set
/// each value read into the inputs with [`ConnInputs::set`]. Empty when the instance is not
/// external.
pub fn selectors(
    cr: &WeightsAndBiases,
    kind: ServiceKind,
    instance: &str,
) -> Vec<(&'static str, SecretKeySelector)> {
    let mut out: Vec<(&'static str, SecretKeySelector)> = Vec::new();
    let mut add = |f: &'static str, s: Option<&SecretKeySelector>| {
        if let Some(s) = s {
            out.push((f, s.clone()));
        }
    };
    let spec = &cr.spec;
    match kind {
        ServiceKind::Mysql => {
            if let Some(e) = spec
                .mysql
                .as_ref()
                .and_then(|m| m.get(instance))
                .and_then(|m| m.external_mysql.as_ref())
            {
                // The URL first (its parts never override a field that is set).
                add("url", e.url.as_ref());
                add("host", e.host.as_ref());
                add("port", e.port.as_ref());
                add("database", e.database.as_ref());
                add("user", e.username.as_ref());
                add("password", e.password.as_ref());
                add("tls", e.tls.as_ref());
                add("sslCa", e.ssl_ca.as_ref());
                add("sslCert", e.ssl_cert.as_ref());
                add("sslKey", e.ssl_key.as_ref());
            }
        }
        ServiceKind::Redis => {
            if let Some(e) = spec
                .redis
                .as_ref()
                .and_then(|m| m.get(instance))
                .and_then(|m| m.external_redis.as_ref())
            {
                add("url", e.url.as_ref());
                add("host", e.host.as_ref());
                add("port", e.port.as_ref());
                add("password", e.password.as_ref());
                add("tls", e.tls.as_ref());
                add("sslCa", e.ssl_ca.as_ref());
            }
        }
        ServiceKind::ObjectStore => {
            if let Some(e) = spec
                .object_store
                .as_ref()
                .and_then(|m| m.get(instance))
                .and_then(|m| m.external_object_store.as_ref())
            {
                add("url", e.url.as_ref());
                add("provider", e.provider.as_ref());
                add("endpoint", e.endpoint.as_ref());
                add("port", e.port.as_ref());
                add("accessKey", e.access_key.as_ref());
                add("secretKey", e.secret_key.as_ref());
                add("bucket", e.bucket.as_ref());
                add("path", e.path.as_ref());
                add("region", e.region.as_ref());
                add("kmsKey", e.kms_key.as_ref());
                add("tls", e.tls_enabled.as_ref());
                add("forcePathStyle", e.force_path_style.as_ref());
            }
        }
        ServiceKind::Clickhouse => {
            if let Some(e) = spec
                .clickhouse
                .as_ref()
                .and_then(|m| m.get(instance))
                .and_then(|m| m.external_clickhouse.as_ref())
            {
                add("url", e.url.as_ref());
                add("host", e.host.as_ref());
                add("tcpPort", e.tcp_port.as_ref());
                add("httpPort", e.http_port.as_ref());
                add("database", e.database.as_ref());
                add("user", e.username.as_ref());
                add("password", e.password.as_ref());
                add("replicated", e.replicated.as_ref());
                add("clusterName", e.cluster_name.as_ref());
            }
        }
        ServiceKind::Kafka => {
            if let Some(e) = spec.kafka.as_ref().and_then(|k| k.external_kafka.as_ref()) {
                add("bootstrapServers", Some(&e.bootstrap_servers));
                add("tls", e.tls.as_ref());
                add("sslCa", e.ssl_ca.as_ref());
                add("user", e.username.as_ref());
                add("password", e.password.as_ref());
            }
        }
    }
    out
}

/// The inputs of an external instance with its literal (non-Secret) CR fields filled:
/// Redis `sentinelMaster` and `params`, Kafka `saslMechanism`. A `url` set into them is read
/// as this kind's URL; these literals override its parts.
pub fn inputs_template(cr: &WeightsAndBiases, kind: ServiceKind, instance: &str) -> ConnInputs {
    let mut i = ConnInputs::for_kind(kind, instance);
    match kind {
        ServiceKind::Redis => {
            if let Some(e) = cr
                .spec
                .redis
                .as_ref()
                .and_then(|m| m.get(instance))
                .and_then(|m| m.external_redis.as_ref())
            {
                i.sentinel_master = e.sentinel_master.clone().filter(|s| !s.is_empty());
                i.params = e.params.clone().unwrap_or_default();
            }
        }
        ServiceKind::Kafka => {
            i.sasl_mechanism = cr
                .spec
                .kafka
                .as_ref()
                .and_then(|k| k.external_kafka.as_ref())
                .and_then(|e| e.sasl_mechanism.clone());
        }
        _ => {}
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cr(yaml_services: &str) -> WeightsAndBiases {
        let yaml = format!(
            "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {{name: w, namespace: n}}\nspec:\n  wandb:\n    hostname: https://w.example.com\n    version: \"0.84.0\"\n{yaml_services}"
        );
        serde_saphyr::from_str(&yaml).unwrap()
    }

    #[test]
    fn selectors_and_literals_compose_a_redis_url() {
        let c = cr(concat!(
            "  redis:\n    default:\n      externalRedis:\n",
            "        host: {name: r, key: host}\n        password: {name: r, key: pw}\n",
            "        sslCa: {name: r, key: ca}\n        sentinelMaster: gorilla\n",
            "        params: {poolSize: \"10\"}\n",
        ));
        let sel = selectors(&c, ServiceKind::Redis, "default");
        let fields: Vec<&str> = sel.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["host", "password", "sslCa"]);
        // What the controller does with the values it read.
        let mut i = inputs_template(&c, ServiceKind::Redis, "default");
        for (f, _) in &sel {
            let value = match *f {
                "host" => "redis.example.com",
                "password" => "p@ss word",
                _ => "-----BEGIN CERTIFICATE-----",
            };
            assert!(i.set(f, value));
        }
        assert_eq!(
            super::super::url::redis_url(&i).unwrap(),
            "redis://:p%40ss%20word@redis.example.com:26379?ttlInSeconds=604800&tls=true\
             &caCertPath=/etc/ssl/certs/redis_ca.pem&master=gorilla&poolSize=10"
        );
        assert!(selectors(&c, ServiceKind::Mysql, "default").is_empty());
    }
}
