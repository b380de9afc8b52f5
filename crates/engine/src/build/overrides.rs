//! `spec.wandb.legacyOverrides`: env and resources carried over from v1 (Helm) values.
//!
//! Precedence as the official operator applies it: everything the manifest and the CR produce,
//! then `legacyOverrides.global.env`, then the app's own `legacyOverrides.<app>.env` (each
//! replaces same-named variables, in place, or is appended). Resources overlay the manifest
//! sizing per resource name; limits are dropped unless `requireLimits`, as for sizing.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use wandb_api::{LegacyOverride, WeightsAndBiases};
use wandb_manifest::ServerManifest;

/// The reserved key whose env applies to every application and migration.
pub const GLOBAL: &str = "global";

fn overrides(cr: &WeightsAndBiases) -> Option<&BTreeMap<String, LegacyOverride>> {
    cr.spec.wandb.legacy_overrides.as_ref()
}

/// The override of one app: by manifest name, else by the app's legacy (chart) name.
fn for_app<'a>(
    cr: &'a WeightsAndBiases,
    app_name: &str,
    legacy_key: Option<&str>,
) -> Option<&'a LegacyOverride> {
    let o = overrides(cr)?;
    o.get(app_name)
        .or_else(|| legacy_key.and_then(|k| o.get(k)))
        .filter(|_| app_name != GLOBAL)
}

/// Applies `global` then the app's env (`app_name` None: a migration, global only).
pub fn apply_env(
    cr: &WeightsAndBiases,
    app_name: Option<&str>,
    legacy_key: Option<&str>,
    env: &mut Vec<EnvVar>,
) {
    let global = overrides(cr).and_then(|o| o.get(GLOBAL));
    let app = app_name.and_then(|a| for_app(cr, a, legacy_key));
    for o in [global, app].into_iter().flatten() {
        for var in o.env.iter().flatten() {
            match env.iter_mut().find(|e| e.name == var.name) {
                Some(existing) => *existing = var.clone(),
                None => env.push(var.clone()),
            }
        }
    }
}

/// Lays the app's resource override over `base`, per resource name.
pub fn apply_resources(
    cr: &WeightsAndBiases,
    app_name: &str,
    legacy_key: Option<&str>,
    require_limits: bool,
    base: &mut ResourceRequirements,
) {
    let Some(r) = for_app(cr, app_name, legacy_key).and_then(|o| o.resources.as_ref()) else {
        return;
    };
    for (name, q) in r.requests.iter().flatten() {
        base.requests
            .get_or_insert_with(Default::default)
            .insert(name.clone(), q.clone());
    }
    if require_limits {
        for (name, q) in r.limits.iter().flatten() {
            base.limits
                .get_or_insert_with(Default::default)
                .insert(name.clone(), q.clone());
        }
    }
}

/// Keys naming neither `global` nor an application (by name or legacy name): a warning each,
/// as the official operator logs them (they are not pruned, so a later manifest can use them).
pub fn unknown_keys(cr: &WeightsAndBiases, manifest: &ServerManifest) -> Vec<String> {
    let Some(o) = overrides(cr) else {
        return vec![];
    };
    o.keys()
        .filter(|k| k.as_str() != GLOBAL)
        .filter(|k| {
            !manifest
                .applications
                .iter()
                .any(|(name, app)| name == *k || app.legacy_key.as_deref() == Some(k.as_str()))
        })
        .map(|k| {
            format!(
                "spec.wandb.legacyOverrides.{k}: no application of the manifest is named {k} \
                 (by name or legacy name); the override is not applied"
            )
        })
        .collect()
}
