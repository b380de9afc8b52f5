//! Object names and labels. Every name derives from the CR name so that two instances in one
//! namespace never collide; selector labels never include the version (selectors are immutable).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

pub const MANAGED_BY: &str = "wandb-operator";
pub const PART_OF: &str = "wandb";
/// Label carrying the owning instance name, used to list what an instance owns (for pruning).
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// Annotation naming how the controller fills a Secret that the engine only declares.
pub const SECRET_SOURCE_ANNOTATION: &str = "apps.wandb.com/secret-source";
/// Annotation marking data the retention policy governs (kept on `detach`).
pub const RETAIN_ANNOTATION: &str = "apps.wandb.com/retain";
/// Annotation marking a Secret every instance of the namespace uses (`useExactName`).
pub const SHARED_ANNOTATION: &str = "apps.wandb.com/shared";
/// Annotation holding a hash of the whole object the operator last applied: with the live values
/// still matching, an equal hash proves the last apply already removed every field no longer
/// desired, so the write can be skipped.
pub const APPLIED_HASH_ANNOTATION: &str = "apps.wandb.com/applied-hash";
/// On a `WeightsAndBiases`: `"true"` stops every write for the instance (maintenance, restores).
pub const PAUSED_ANNOTATION: &str = "apps.wandb.com/paused";
/// On a `WeightsAndBiases`: the version a restore went back to; allows `spec.wandb.version` to
/// be that version although newer migrations already ran.
pub const RESTORED_VERSION_ANNOTATION: &str = "apps.wandb.com/restored-version";
/// Annotation acknowledging a backup the operator cannot take (an external database):
/// `<version>:<snapshot id>`, for the upgrade to `<version>`.
pub const BACKUP_TAKEN_ANNOTATION: &str = "apps.wandb.com/backup-taken";

/// Kubernetes names are at most 63 characters for anything that ends up in a label.
const MAX_NAME: usize = 63;

/// `<cr>-<suffix>`, shortened with a stable hash when too long for a label value.
pub fn scoped(cr: &str, suffix: &str) -> String {
    dns_label(&format!("{cr}-{suffix}"))
}

/// Lowercases, replaces anything outside `[a-z0-9-]` by `-`, trims dashes, and keeps the result
/// within 63 characters by replacing the tail with a short hash of the whole input.
pub fn dns_label(raw: &str) -> String {
    let mut s: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    s = s.trim_matches('-').to_string();
    if s.len() <= MAX_NAME {
        return s;
    }
    let hash = short_hash(raw);
    let keep = MAX_NAME - hash.len() - 1;
    format!("{}-{hash}", s[..keep].trim_end_matches('-'))
}

/// First 8 hex digits of SHA-256: stable across runs and platforms.
pub fn short_hash(input: &str) -> String {
    let digest = Sha256::digest(input.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// The recommended labels on every object of an instance.
pub fn labels(cr: &str, name: &str, component: &str, version: &str) -> BTreeMap<String, String> {
    let mut l = selector(cr, name);
    l.insert(COMPONENT_LABEL.into(), component.into());
    l.insert("app.kubernetes.io/part-of".into(), PART_OF.into());
    l.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    l.insert("app.kubernetes.io/version".into(), label_value(version));
    l
}

/// Immutable selector labels: no version, no component.
pub fn selector(cr: &str, name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), label_value(name)),
        (INSTANCE_LABEL.to_string(), label_value(cr)),
    ])
}

/// A valid label value (63 chars of `[A-Za-z0-9._-]`, alphanumeric at both ends).
pub fn label_value(raw: &str) -> String {
    let s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if s.len() <= MAX_NAME {
        return s.to_string();
    }
    let hash = short_hash(raw);
    format!(
        "{}-{hash}",
        s[..MAX_NAME - 9].trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_stay_valid_and_distinct() {
        let a = dns_label(&"x".repeat(80));
        let b = dns_label(&format!("{}y", "x".repeat(79)));
        assert!(a.len() <= 63 && b.len() <= 63);
        assert_ne!(a, b);
        assert_eq!(dns_label("Wandb_Gorilla.0.84"), "wandb-gorilla-0-84");
    }

    #[test]
    fn label_values_are_trimmed() {
        assert_eq!(label_value("0.84.0+build"), "0.84.0-build");
        assert_eq!(label_value("-a-"), "a");
    }
}
