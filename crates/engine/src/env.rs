//! Env resolution: manifest env vars (literal, `valueFrom`, or `sources`) become container env.
//!
//! Each source yields one component; components join with `,`. A single secret-backed component
//! becomes a direct `secretKeyRef`; several become intermediate vars `<NAME>_<i>` referenced as
//! `$(NAME_0),$(NAME_1)`, declared before the var so Kubernetes expands them. No secret value is
//! ever written: secrets stay references.

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, SecretKeySelector};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;
use wandb_manifest::{EnvSource, EnvSourceType, ServerManifest};

use crate::connection::{ConnValue, Connections, ServiceKind};
use crate::crview;
use crate::instance::Instance;
use crate::names;

/// Everything env resolution reads.
pub struct EnvContext<'a> {
    pub inst: &'a Instance,
    pub manifest: &'a ServerManifest,
    pub features: &'a std::collections::BTreeMap<String, bool>,
    pub conns: &'a Connections,
    pub view: &'a Value,
    /// Telemetry settings (OTel endpoints etc.); none configured means telemetry sources resolve
    /// to their default values.
    pub telemetry: Option<&'a crate::connection::Connection>,
}

/// A resolved component: literal text or a Secret key.
#[derive(Clone, Debug, PartialEq)]
enum Part {
    Literal(String),
    Secret(SecretKeySelector),
}

/// Resolves `vars` in order. `warnings` receives sources that could not be understood.
pub fn resolve(
    vars: &[wandb_manifest::EnvVar],
    ctx: &EnvContext,
    warnings: &mut Vec<String>,
) -> Vec<EnvVar> {
    let mut out = Vec::with_capacity(vars.len());
    let mut kms: Option<Part> = None;
    for var in vars {
        if kms.is_none() {
            kms = var.sources.iter().find_map(|s| kms_key_of(s, ctx));
        }
        if let Some(value) = &var.value {
            out.push(literal(&var.name, value));
            continue;
        }
        if let Some(from) = &var.value_from {
            out.push(EnvVar {
                name: var.name.clone(),
                value: None,
                value_from: Some(from.clone()),
            });
            continue;
        }
        let parts: Vec<Part> = var
            .sources
            .iter()
            .filter_map(|s| resolve_source(s, ctx, &var.name, warnings))
            .collect();
        match parts.as_slice() {
            [] => {
                if let Some(default) = &var.default_value {
                    out.push(literal(&var.name, default));
                }
            }
            [Part::Literal(v)] => out.push(literal(&var.name, v)),
            [Part::Secret(sel)] => out.push(secret(&var.name, sel.clone())),
            many => {
                let mut joined = Vec::with_capacity(many.len());
                for (i, part) in many.iter().enumerate() {
                    match part {
                        Part::Literal(v) => joined.push(v.clone()),
                        Part::Secret(sel) => {
                            let inner = format!("{}_{i}", var.name);
                            out.push(secret(&inner, sel.clone()));
                            joined.push(format!("$({inner})"));
                        }
                    }
                }
                out.push(literal(&var.name, &joined.join(",")));
            }
        }
    }
    // Manifests name the bucket but not its SSE-KMS key; W&B reads the key from
    // `AWS_S3_KMS_ID` (as the Helm chart sets it). A manifest that declares the var wins.
    if let Some(part) = kms
        && !vars.iter().any(|v| v.name == KMS_ENV)
    {
        out.push(match part {
            Part::Literal(v) => literal(KMS_ENV, &v),
            Part::Secret(sel) => secret(KMS_ENV, sel),
        });
    }
    dedupe_last_wins(out)
}

/// The env var W&B reads the object store's SSE-KMS key from.
pub const KMS_ENV: &str = "AWS_S3_KMS_ID";

/// The KMS key of the object store a `bucket` source reads, when that store has one.
fn kms_key_of(src: &EnvSource, ctx: &EnvContext) -> Option<Part> {
    if !matches!(src.kind, EnvSourceType::Bucket) {
        return None;
    }
    let instance = src.name.as_deref().filter(|n| !n.is_empty());
    let conn = ctx
        .conns
        .lookup(ServiceKind::ObjectStore, instance.unwrap_or("default"))?;
    conn.get("kmskey").map(part_of)
}

/// Later definitions of a name replace earlier ones in place (SSA rejects duplicate env names).
fn dedupe_last_wins(vars: Vec<EnvVar>) -> Vec<EnvVar> {
    let mut out: Vec<EnvVar> = Vec::with_capacity(vars.len());
    for v in vars {
        match out.iter_mut().find(|e| e.name == v.name) {
            Some(existing) => *existing = v,
            None => out.push(v),
        }
    }
    out
}

fn resolve_source(
    src: &EnvSource,
    ctx: &EnvContext,
    var: &str,
    warnings: &mut Vec<String>,
) -> Option<Part> {
    let instance = src
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or("default");
    match &src.kind {
        EnvSourceType::Mysql => connection(ctx, ServiceKind::Mysql, instance, src.field.as_deref()),
        EnvSourceType::Redis => connection(ctx, ServiceKind::Redis, instance, src.field.as_deref()),
        EnvSourceType::Bucket => connection(
            ctx,
            ServiceKind::ObjectStore,
            instance,
            src.field.as_deref(),
        ),
        EnvSourceType::Clickhouse => {
            connection(ctx, ServiceKind::Clickhouse, instance, src.field.as_deref())
        }
        EnvSourceType::Kafka => connection(ctx, ServiceKind::Kafka, instance, src.field.as_deref()),
        EnvSourceType::Telemetry => {
            let field = src.field.as_deref().or(src.name.as_deref())?;
            ctx.telemetry.and_then(|t| t.get(field)).map(part_of)
        }
        EnvSourceType::GeneratedSecret => {
            let gs = ctx
                .manifest
                .generated_secrets
                .iter()
                .find(|g| g.name == instance);
            match gs {
                Some(gs) => Some(Part::Secret(SecretKeySelector {
                    name: generated_secret_name(ctx.inst, gs),
                    key: GENERATED_SECRET_KEY.into(),
                    optional: None,
                })),
                None => {
                    warnings.push(format!("env {var}: generatedSecret {instance:?} is not declared in the manifest's generatedSecrets"));
                    None
                }
            }
        }
        EnvSourceType::Service => service_url(src, ctx, var, warnings).map(Part::Literal),
        EnvSourceType::JwtIssuerMap => ctx.inst.internal_auth.as_ref().map(|issuer| {
            let subject = format!(
                "system:serviceaccount:{}:{}",
                ctx.inst.namespace, ctx.inst.service_account
            );
            Part::Literal(serde_json::json!({ subject: issuer }).to_string())
        }),
        EnvSourceType::CustomResource => {
            let path = src.field.as_deref()?;
            match crview::lookup(ctx.view, path)? {
                Value::String(s) => Some(Part::Literal(s.clone())),
                Value::Bool(b) => Some(Part::Literal(b.to_string())),
                Value::Number(n) => Some(Part::Literal(n.to_string())),
                Value::Object(o) => match (o.get("name"), o.get("key")) {
                    (Some(Value::String(name)), Some(Value::String(key))) => {
                        Some(Part::Secret(SecretKeySelector {
                            name: name.clone(),
                            key: key.clone(),
                            // A connection key the Secret carries only when configured.
                            optional: o.get("optional").and_then(Value::as_bool).filter(|o| *o),
                        }))
                    }
                    _ => None,
                },
                _ => None,
            }
        }
        EnvSourceType::Unknown(other) => {
            warnings.push(format!("env {var}: unknown source type {other:?} ignored"));
            None
        }
    }
}

fn connection(
    ctx: &EnvContext,
    kind: ServiceKind,
    instance: &str,
    field: Option<&str>,
) -> Option<Part> {
    let conn = ctx.conns.lookup(kind, instance)?;
    let field = field.unwrap_or("url");
    // W&B's ClickHouse clients (weave) speak HTTP: a bare `port` means the HTTP port.
    let field =
        if kind == ServiceKind::Clickhouse && crate::connection::normalize_field(field) == "port" {
            "httpport"
        } else {
            field
        };
    conn.get(field).map(part_of)
}

fn part_of(v: &ConnValue) -> Part {
    match v {
        ConnValue::Literal(s) => Part::Literal(s.clone()),
        ConnValue::Secret { secret_key_ref } => Part::Secret(secret_key_ref.clone()),
    }
}

/// `[proto://]<cr>-<app>.<ns>.svc.cluster.local:<port><path>` of an enabled app's Service.
fn service_url(
    src: &EnvSource,
    ctx: &EnvContext,
    var: &str,
    warnings: &mut Vec<String>,
) -> Option<String> {
    let app_name = src.name.as_deref()?;
    let Some(app) = ctx.manifest.applications.get(app_name) else {
        warnings.push(format!(
            "env {var}: service source names unknown application {app_name:?}"
        ));
        return None;
    };
    if !wandb_manifest::app_enabled(app, ctx.features) {
        return None;
    }
    let port = match app.find_service_port(src.port.as_ref()) {
        Some(p) => p.port,
        None => {
            let named = match &src.port {
                Some(IntOrString::String(s)) => s.clone(),
                Some(IntOrString::Int(n)) => n.to_string(),
                None => "(first)".into(),
            };
            warnings.push(format!(
                "env {var}: application {app_name:?} has no Service port {named}"
            ));
            return None;
        }
    };
    let proto = src
        .proto
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(|p| format!("{p}://"))
        .unwrap_or_default();
    let path = src.path.as_deref().unwrap_or("");
    Some(format!(
        "{proto}{}.{}.svc.cluster.local:{port}{path}",
        names::scoped(&ctx.inst.name, app_name),
        ctx.inst.namespace
    ))
}

/// Key holding a generated secret's value.
pub const GENERATED_SECRET_KEY: &str = "key";

/// `<cr>-<name>`, or exactly `<name>` when the manifest asks (apps look those up by name).
pub fn generated_secret_name(inst: &Instance, gs: &wandb_manifest::GeneratedSecret) -> String {
    if gs.use_exact_name {
        gs.name.clone()
    } else {
        names::scoped(&inst.name, &gs.name)
    }
}

pub fn literal(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        value_from: None,
    }
}

pub fn secret(name: &str, sel: SecretKeySelector) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(sel),
            ..Default::default()
        }),
    }
}
