//! Checks of the resource: the upgrade path, the Secrets it reads, its external services.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::Value;
use wandb_api::WeightsAndBiases;
use wandb_engine::Built;
use wandb_manifest::ServerManifest;

use super::Findings;
use crate::cli::Cluster;

/// Downgrades are refused; a failed migration of the running version is reported.
pub(super) fn upgrade_path(
    cr: &WeightsAndBiases,
    live: Option<&WeightsAndBiases>,
    f: &mut Findings,
) {
    const CHECK: &str = "upgrade";
    let desired = &cr.spec.wandb.version;
    let status = live.and_then(|l| l.status.as_ref());
    let Some(running) = status.and_then(|s| s.version.as_deref()) else {
        return f.ok(
            CHECK,
            format!("new installation of {desired} (nothing running yet)"),
        );
    };
    let migration = status
        .and_then(|s| s.wandb.as_ref())
        .and_then(|w| w.migration.as_ref());
    if let Some(m) = migration.filter(|m| m.phase == Some(wandb_api::MigrationPhase::Failed)) {
        f.error(
            CHECK,
            format!(
                "a migration for {} failed: {}",
                m.version.as_deref().unwrap_or("?"),
                m.reason.as_deref().unwrap_or("see the MigrationsComplete condition")
            ),
            "fix the cause (wandb-operator status NAME shows the Job), delete the failed Job to retry, or set spec.wandb.version back",
        );
    }
    let parse = |v: &str| semver::Version::parse(v.trim_start_matches('v')).ok();
    match (parse(running), parse(desired)) {
        (Some(r), Some(d)) if d < r => f.error(
            CHECK,
            format!("{running} -> {desired} is a downgrade: the database schema of {running} stays"),
            format!("keep spec.wandb.version at {running} or later; going back needs a database backup taken on {desired}"),
        ),
        (Some(r), Some(d)) if d == r => f.ok(CHECK, format!("{running} runs; no version change")),
        (Some(_), Some(_)) => f.ok(
            CHECK,
            format!("{running} -> {desired}: an upgrade (its migrations run before the new version starts)"),
        ),
        _ => f.warn(
            CHECK,
            format!("cannot compare versions {running} and {desired} (not semantic versions)"),
            "check the W&B release notes for the supported upgrade path",
        ),
    }
}

/// Secret references of `v`'s pod templates: (Secret, key or whole, optional).
pub(super) fn secret_refs(v: &Value, out: &mut Vec<(String, Option<String>)>) {
    match v {
        Value::Object(m) => {
            let required = |o: &Value| o.get("optional").and_then(Value::as_bool) != Some(true);
            if let Some(r) = m.get("secretKeyRef").filter(|r| required(r))
                && let (Some(n), Some(k)) = (r["name"].as_str(), r["key"].as_str())
            {
                out.push((n.into(), Some(k.into())));
            }
            if let Some(r) = m.get("secretRef").filter(|r| required(r))
                && let Some(n) = r["name"].as_str()
            {
                out.push((n.into(), None));
            }
            if let Some(r) = m.get("secret").filter(|r| required(r))
                && let Some(n) = r["secretName"].as_str()
            {
                out.push((n.into(), None));
            }
            m.values().for_each(|c| secret_refs(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| secret_refs(c, out)),
        _ => {}
    }
}

/// Every Secret (and key) the pods read exists, except those the operator or a migration
/// creates.
pub(super) async fn secrets(
    cluster: &Cluster,
    cr: &WeightsAndBiases,
    built: &Built,
    manifest: &ServerManifest,
    f: &mut Findings,
) -> Result<(), String> {
    const CHECK: &str = "secrets";
    let mut exempt: BTreeSet<String> = built.secrets.iter().map(|s| s.name.clone()).collect();
    exempt.extend(
        manifest
            .migrations
            .keys()
            .flat_map(|m| manifest.migration_env(m).unwrap_or_default())
            .filter(|e| e.name.ends_with("_SECRET_NAME"))
            .filter_map(|e| e.value),
    );
    let mut refs = Vec::new();
    for o in &built.objects {
        secret_refs(&o.object, &mut refs);
    }
    refs.sort();
    refs.dedup();
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let mut problems = Vec::new();
    let present = |name: &str| {
        let api = api.clone();
        let name = name.to_string();
        async move {
            api.get_opt(&name)
                .await
                .map_err(|e| format!("reading Secret {name}: {e}"))
        }
    };
    // Every Secret the spec names (license, OIDC, SMTP, proxy, image pull, external services).
    let named = wandb_engine::references::user_secrets(cr);
    for name in &named {
        if present(name).await?.is_none() {
            problems.push(format!("Secret {name} not found"));
        }
    }
    // Every key the pods read of a Secret that is not the operator's or a migration's.
    let yours: Vec<&(String, Option<String>)> =
        refs.iter().filter(|(n, _)| !exempt.contains(n)).collect();
    for (name, key) in &yours {
        match present(name).await? {
            None => problems.push(format!("Secret {name} not found")),
            Some(s) => {
                if let Some(k) = key {
                    let has = s.data.as_ref().is_some_and(|d| d.contains_key(k))
                        || s.string_data.as_ref().is_some_and(|d| d.contains_key(k));
                    if !has {
                        problems.push(format!("Secret {name} has no key {k}"));
                    }
                }
            }
        }
    }
    problems.sort();
    problems.dedup();
    if problems.is_empty() {
        f.ok(
            CHECK,
            format!(
                "the {} Secret(s) the spec names exist; of the pods' {} Secret reference(s), {} are to Secrets the operator or a migration creates and the other {} resolve",
                named.len(),
                refs.len(),
                refs.len() - yours.len(),
                yours.len()
            ),
        );
    } else {
        f.error(
            CHECK,
            problems.join("; "),
            format!(
                "create the Secrets and keys in namespace {} (kubectl create secret generic NAME --from-literal=KEY=...)",
                cluster.namespace
            ),
        );
    }
    Ok(())
}

/// External services answer the preflight (their Secret keys read first).
pub(super) async fn preflight(
    cluster: &Cluster,
    cr: &WeightsAndBiases,
    built: &Built,
    f: &mut Findings,
) -> Result<(), String> {
    let found = crate::cli::preflight::run(&cluster.client, &cluster.namespace, cr, built).await?;
    for x in found {
        let check = format!("service {}/{}", x.kind, x.instance);
        match (&x.problem, x.endpoint.is_some()) {
            (Some(p), false) => f.error(
                &check,
                p.clone(),
                format!("create the Secret keys spec.{}.{} names", x.kind, x.instance),
            ),
            (Some(p), true) => f.warn(
                &check,
                p.clone(),
                "check the host, port and TLS settings in the Secret, DNS and firewalls; this ran from where doctor runs, the operator repeats it from the cluster",
            ),
            (None, _) => f.ok(
                &check,
                match (&x.endpoint, &x.skipped) {
                    (_, Some(why)) => format!("not checked: {why}"),
                    (Some(e), None) => format!("{e} answers"),
                    (None, None) => "ok".into(),
                },
            ),
        }
    }
    Ok(())
}
