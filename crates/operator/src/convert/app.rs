//! v1 values -> `spec.wandb`, `spec.size`, `spec.global` and `spec.networking`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::LocalObjectReference;
use serde_json::Value;
use wandb_api::{
    EmailSpec, GlobalSpec, IngressSpec, InternalServiceAuthSpec, NetworkingMode, NetworkingSpec,
    NotificationsSpec, OidcSpec, SecretKeySelector, ServiceAccountSpec, Size, SlackSpec, SmtpSpec,
    TlsSpec, WeightsAndBiasesSpec,
};

use super::FindingKind;
use super::values::{Field, Values};

/// The chart's default `global.host`.
const CHART_DEFAULT_HOST: &str = "http://localhost:8080";

pub fn map(v: &Values, name: &str, spec: &mut WeightsAndBiasesSpec) {
    version(v, spec);
    hostname(v, spec);
    license(v, spec);
    size(v, spec);
    global(v, spec);
    service_account(v, spec);
    internal_auth(v, spec);
    ingress(v, name, spec);
    oidc(v, spec);
    notifications(v, spec);
}

/// `app.image.tag`, else `api.image.tag`.
fn version(v: &Values, spec: &mut WeightsAndBiasesSpec) {
    let tag = v.str("app.image.tag").or_else(|| v.str("api.image.tag"));
    v.consume("app.image.repository");
    v.consume("api.image.repository");
    match tag.filter(|t| t != "latest") {
        Some(t) => spec.wandb.version = t,
        None => v.warn(
            "app.image.tag",
            FindingKind::Unmapped,
            "is not set to a release (the v1 operator took the version from the deploy.wandb.ai \
             channel); set spec.wandb.version on the v2 resource, nothing is deployed until then",
        ),
    }
}

fn hostname(v: &Values, spec: &mut WeightsAndBiasesSpec) {
    match v.str("global.host") {
        Some(h) => spec.wandb.hostname = h.trim_end_matches('/').to_owned(),
        None => {
            spec.wandb.hostname = CHART_DEFAULT_HOST.into();
            v.warn(
                "global.host",
                FindingKind::Approximated,
                "is not set; the chart's default http://localhost:8080 is used",
            );
        }
    }
}

/// `global.license` (literal or reference) or `global.licenseSecret{name,key}`.
fn license(v: &Values, spec: &mut WeightsAndBiasesSpec) {
    if let Some(sel) = v.selector("global.license") {
        spec.wandb.license_secret = Some(sel);
        v.consume("global.licenseSecret");
        return;
    }
    if let Some(n) = v.str("global.licenseSecret.name") {
        spec.wandb.license_secret = Some(SecretKeySelector {
            name: n,
            key: v
                .str("global.licenseSecret.key")
                .unwrap_or_else(|| "license".into()),
            optional: None,
        });
    }
}

/// `global.size`; unset means the chart's default, `small`.
fn size(v: &Values, spec: &mut WeightsAndBiasesSpec) {
    let raw = v.str("global.size");
    let parsed = match raw.as_deref() {
        None => Some(Size::Small),
        Some(s) => serde_json::from_value::<Size>(Value::String(s.to_ascii_lowercase())).ok(),
    };
    match parsed {
        Some(s) => spec.size = Some(s),
        None => v.warn(
            "global.size",
            FindingKind::Unmapped,
            "is not one of dev, micro, small, medium, large, xlarge, xxlarge; the v2 default size is used",
        ),
    }
}

fn global(v: &Values, spec: &mut WeightsAndBiasesSpec) {
    let mut g = GlobalSpec::default();
    if let Some(certs) = v.get("global.customCACerts").and_then(Value::as_array) {
        let certs: Vec<String> = certs
            .iter()
            .filter_map(|c| c.as_str().map(str::to_owned))
            .collect();
        g.custom_ca_certs = (!certs.is_empty()).then_some(certs);
    }
    g.ca_certs_config_map = v.str("global.caCertsConfigMap");
    let registry = v
        .str("global.imageRegistry")
        .or_else(|| v.str("global.repositoryPrefix"));
    if let Some(r) = registry {
        let r = r.trim_end_matches('/').to_owned();
        v.warn(
            "global.imageRegistry",
            FindingKind::Approximated,
            "is carried to spec.global.imageRegistry, where images are pulled as \
             <imageRegistry>/<original registry>/<repository> (the `wsm registry mirror` layout); \
             check that the mirror has that layout",
        );
        g.image_registry = Some(r);
    }
    if let Some(list) = v.get("global.imagePullSecrets").and_then(Value::as_array) {
        let refs: Vec<LocalObjectReference> = list
            .iter()
            .filter_map(|e| match e {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("name").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            })
            .map(|name| LocalObjectReference { name })
            .collect();
        g.image_pull_secrets = (!refs.is_empty()).then_some(refs);
    }
    if g != GlobalSpec::default() {
        spec.global = Some(g);
    }
}

/// `app|api.serviceAccount.annotations`, merged (app wins).
fn service_account(v: &Values, spec: &mut WeightsAndBiasesSpec) {
    let mut annotations = BTreeMap::new();
    for section in ["api", "app"] {
        if let Some(o) = v.object(&format!("{section}.serviceAccount.annotations")) {
            for (k, val) in o {
                if let Some(s) = val.as_str() {
                    annotations.insert(k.clone(), s.to_owned());
                }
            }
        }
    }
    if !annotations.is_empty() {
        spec.wandb.service_account = Some(ServiceAccountSpec {
            annotations: Some(annotations),
            ..Default::default()
        });
    }
}

/// First `global|app.internalJWTMap[].issuer`; none means internal service auth was off.
fn internal_auth(v: &Values, spec: &mut WeightsAndBiasesSpec) {
    let issuer = ["global.internalJWTMap", "app.internalJWTMap"]
        .iter()
        .filter_map(|p| v.get(p).and_then(Value::as_array))
        .flatten()
        .find_map(|e| e.get("issuer").and_then(Value::as_str).map(str::to_owned));
    spec.wandb.internal_service_auth = Some(match issuer {
        Some(i) => InternalServiceAuthSpec {
            enabled: Some(true),
            oidc_issuer: Some(i),
        },
        None => InternalServiceAuthSpec {
            enabled: Some(false),
            oidc_issuer: None,
        },
    });
}

/// `ingress.*` unless `ingress.install` or `ingress.create` is false.
fn ingress(v: &Values, name: &str, spec: &mut WeightsAndBiasesSpec) {
    let off = v.bool("ingress.install") == Some(false) || v.bool("ingress.create") == Some(false);
    if off {
        v.consume("ingress");
        return;
    }
    let mut n = NetworkingSpec {
        mode: Some(NetworkingMode::Ingress),
        ..Default::default()
    };
    let class = v.str("ingress.class");
    let ingress_name = v.str("ingress.nameOverride").filter(|n2| n2 != name);
    n.ingress = Some(IngressSpec {
        ingress_class_name: class,
        name: ingress_name,
    });
    if let Some(a) = v.object("ingress.annotations") {
        let map: BTreeMap<String, String> = a
            .iter()
            .filter_map(|(k, val)| match val {
                Value::String(s) => Some((k.clone(), s.clone())),
                Value::Bool(_) | Value::Number(_) => Some((k.clone(), val.to_string())),
                _ => None,
            })
            .collect();
        n.annotations = (!map.is_empty()).then_some(map);
    }
    if let Some(hosts) = v.get("ingress.additionalHosts").and_then(Value::as_array) {
        let hosts: Vec<String> = hosts
            .iter()
            .filter_map(Value::as_str)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        if !hosts.is_empty() {
            spec.wandb.additional_hostnames = Some(hosts);
        }
    }
    let tls_secret = v
        .get("ingress.tls")
        .and_then(Value::as_array)
        .and_then(|t| {
            t.iter()
                .find_map(|e| e.get("secretName").and_then(Value::as_str))
        })
        .map(str::to_owned);
    if let Some(s) = tls_secret {
        n.tls = Some(TlsSpec {
            secret_name: Some(s),
            ..Default::default()
        });
    }
    spec.networking = Some(n);
}

/// `global.auth.oidc.{clientId,secret,authMethod,issuer}`, `oidcSecret{name,secretKey}`,
/// `global.auth.sessionLengthHours`.
fn oidc(v: &Values, spec: &mut WeightsAndBiasesSpec) {
    let client_id = v.selector("global.auth.oidc.clientId");
    let secret = v.selector("global.auth.oidc.secret").or_else(|| {
        v.str("global.auth.oidc.oidcSecret.name")
            .map(|n| SecretKeySelector {
                name: n,
                key: v
                    .str("global.auth.oidc.oidcSecret.secretKey")
                    .unwrap_or_else(|| "OIDC_SECRET".into()),
                optional: None,
            })
    });
    let issuer = v.selector("global.auth.oidc.issuer");
    let method = v.selector("global.auth.oidc.authMethod");
    let session = match v.field("global.auth.sessionLengthHours") {
        Field::Literal(h) => Some(format!("{h}h")),
        _ => None,
    };
    if client_id.is_some() || issuer.is_some() {
        spec.wandb.oidc = Some(OidcSpec {
            client_id,
            client_secret: secret,
            issuer_url: issuer,
            auth_method: method,
            session_length: session,
        });
    }
}

/// `global.email.smtp.{host,port,user,password}` and `global.slack.{clientId,secret}`.
fn notifications(v: &Values, spec: &mut WeightsAndBiasesSpec) {
    let mut n = NotificationsSpec::default();
    if let Some(host) = v.selector("global.email.smtp.host") {
        let port = v.selector("global.email.smtp.port").unwrap_or_else(|| {
            // The chart's default port.
            v.store("global.email.smtp.port", "587".into())
        });
        let user = v.selector("global.email.smtp.user");
        let password = v.selector("global.email.smtp.password");
        match (user, password) {
            (Some(username), Some(password)) => {
                n.email = Some(EmailSpec {
                    smtp: Some(SmtpSpec {
                        host,
                        port,
                        username,
                        password,
                    }),
                    sink: None,
                });
            }
            _ => v.warn(
                "global.email.smtp",
                FindingKind::Unmapped,
                "has no user or password; v2 SMTP needs both (mail goes through W&B's relay until it is configured)",
            ),
        }
    }
    let slack_id = v.selector("global.slack.clientId");
    let slack_secret = v.selector("global.slack.secret");
    if let (Some(client_id), Some(client_secret)) = (slack_id, slack_secret) {
        n.slack = Some(SlackSpec {
            client_id,
            client_secret,
        });
    }
    if n != NotificationsSpec::default() {
        spec.wandb.notifications = Some(n);
    }
}
