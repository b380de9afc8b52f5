//! Forward-only versions: W&B's migrations cannot be undone, so once a version's migrations ran
//! (`status.wandb.migration.lastSuccessVersion`), an older `spec.wandb.version` would run old code
//! against a newer schema. It is refused unless the user says a restore went back to it.

use semver::Version;
use wandb_api::Reason;

use super::{Failure, FailureKind};
use crate::names::RESTORED_VERSION_ANNOTATION;

/// `None` when `requested` may run; the refusal otherwise. Versions that are not semantic
/// versions (a custom build's tag) cannot be ordered and are let through.
pub fn check(
    requested: &str,
    last_success: Option<&str>,
    restored: Option<&str>,
) -> Option<Failure> {
    let last = last_success?;
    let (Ok(want), Ok(ran)) = (parse(requested), parse(last)) else {
        return None;
    };
    if want >= ran || restored == Some(requested) {
        return None;
    }
    Some(Failure {
        kind: FailureKind::User,
        reason: Reason::DOWNGRADE_REFUSED,
        message: format!(
            "spec.wandb.version {requested} is older than {last}, whose database migrations \
             already ran; W&B migrations are forward-only, so {requested} cannot run on this \
             data. The instance keeps running {last}. To roll back, restore a backup taken \
             before the upgrade to {last} (pause the instance with the annotation \
             apps.wandb.com/paused=true first), then annotate \
             {RESTORED_VERSION_ANNOTATION}={requested} and resume; or set the version back to \
             {last} or newer"
        ),
    })
}

fn parse(v: &str) -> Result<Version, semver::Error> {
    Version::parse(v.trim_start_matches('v'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_versions_are_refused_unless_a_restore_is_acknowledged() {
        assert!(check("0.84.0", Some("0.79.0"), None).is_none(), "upgrade");
        assert!(check("0.84.0", Some("0.84.0"), None).is_none(), "same");
        assert!(check("0.84.0", None, None).is_none(), "first install");
        let f = check("0.79.0", Some("0.84.0"), None).expect("a downgrade");
        assert_eq!(
            (f.kind, f.reason),
            (FailureKind::User, Reason::DOWNGRADE_REFUSED)
        );
        assert!(f.message.contains("0.79.0") && f.message.contains("0.84.0"));
        assert!(f.message.contains("apps.wandb.com/restored-version=0.79.0"));
        assert!(
            check("0.79.0", Some("0.84.0"), Some("0.79.0")).is_none(),
            "acknowledged"
        );
        assert!(
            check("0.79.0", Some("0.84.0"), Some("0.78.0")).is_some(),
            "acknowledging another version does not count"
        );
        assert!(check("custom-build", Some("0.84.0"), None).is_none());
        assert!(check("v0.83.0", Some("0.84.0"), None).is_some());
    }
}
