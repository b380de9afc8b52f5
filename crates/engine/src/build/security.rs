//! Security contexts of W&B containers: what each image can actually start with.
//!
//! A kubelet refuses `runAsNonRoot: true` for an image whose `USER` is a name (it cannot tell
//! that `nginx` is not root) unless `runAsUser` gives the number. So a container runs as a
//! numeric user only where that user is known ([`IMAGE_USERS`]); there it meets the `restricted`
//! Pod Security Standard. Any other image keeps its own user and gets no `runAsNonRoot` (as the
//! official operator does), which meets `baseline`. Every container drops all capabilities,
//! forbids privilege escalation and uses the RuntimeDefault seccomp profile.

use k8s_openapi::api::core::v1::{Capabilities, SeccompProfile, SecurityContext};
use wandb_manifest::ImageRef;

/// The user an image runs as, by repository path (its last segments, registry and mirror
/// prefixes ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageUser {
    pub repository: &'static str,
    pub uid: i64,
    pub gid: i64,
    /// Where the number comes from.
    pub source: &'static str,
}

/// Images whose numeric user is known. The W&B images run as 999 (group 0) under the W&B Helm
/// chart's defaults for every component; `frontend-nginx` runs as the named user `nginx`, uid
/// 101 (the chart sets 101, the official operator's OpenShift notes name the fixed uid);
/// `nginx-unprivileged` declares uid 101.
pub const IMAGE_USERS: &[ImageUser] = &[
    ImageUser {
        repository: "wandb/frontend-nginx",
        uid: 101,
        gid: 0,
        source: "user nginx (uid 101); Helm chart runAsUser 101",
    },
    ImageUser {
        repository: "nginxinc/nginx-unprivileged",
        uid: 101,
        gid: 0,
        source: "image USER 101",
    },
    ImageUser {
        repository: "wandb/local",
        uid: 999,
        gid: 0,
        source: "Helm chart runAsUser 999, runAsGroup 0",
    },
    ImageUser {
        repository: "wandb/megabinary",
        uid: 999,
        gid: 0,
        source: "Helm chart runAsUser 999, runAsGroup 0",
    },
    ImageUser {
        repository: "wandb/weave-python",
        uid: 999,
        gid: 0,
        source: "Helm chart runAsUser 999, runAsGroup 0",
    },
    ImageUser {
        repository: "wandb/weave-trace",
        uid: 999,
        gid: 0,
        source: "Helm chart runAsUser 999, runAsGroup 0",
    },
    ImageUser {
        repository: "wandb/anaconda2",
        uid: 999,
        gid: 0,
        source: "Helm chart runAsUser 999, runAsGroup 0",
    },
    ImageUser {
        repository: "wandb/console",
        uid: 999,
        gid: 0,
        source: "Helm chart runAsUser 999, runAsGroup 0",
    },
];

/// The known user of `image`, if any.
pub fn image_user(image: &ImageRef) -> Option<&'static ImageUser> {
    let (_, path) = image.host_and_path();
    IMAGE_USERS.iter().find(|u| {
        path == u.repository
            || path
                .strip_suffix(u.repository)
                .is_some_and(|prefix| prefix.ends_with('/'))
    })
}

/// The Pod Security Standard level a container of `image` meets.
pub fn pod_security_level(image: Option<&ImageRef>) -> &'static str {
    if image.and_then(image_user).is_some() {
        "restricted"
    } else {
        "baseline"
    }
}

/// Container security context for `image`: `restricted` with its numeric user when known,
/// otherwise the image's own user without `runAsNonRoot`.
pub fn container_security(image: Option<&ImageRef>) -> SecurityContext {
    let user = image.and_then(image_user);
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        run_as_non_root: user.map(|_| true),
        run_as_user: user.map(|u| u.uid),
        run_as_group: user.map(|u| u.gid),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(repository: &str, registry: Option<&str>) -> ImageRef {
        ImageRef {
            registry: registry.map(str::to_string),
            repository: repository.into(),
            ..Default::default()
        }
    }

    #[test]
    fn known_images_run_as_their_numeric_user() {
        let frontend = image(
            "us-docker.pkg.dev/wandb-production/public/wandb/frontend-nginx",
            None,
        );
        let sc = container_security(Some(&frontend));
        assert_eq!(sc.run_as_user, Some(101));
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(pod_security_level(Some(&frontend)), "restricted");
        let mb = image("wandb/megabinary", Some("docker.io"));
        assert_eq!(container_security(Some(&mb)).run_as_user, Some(999));
    }

    #[test]
    fn unknown_images_keep_their_user_without_run_as_non_root() {
        for img in [
            image("example.com/team/custom", None),
            // A suffix that is not a whole path segment does not match.
            image("example.com/notwandb/local", None),
        ] {
            let sc = container_security(Some(&img));
            assert_eq!(sc.run_as_non_root, None, "{img:?}");
            assert_eq!(sc.run_as_user, None);
            assert_eq!(sc.allow_privilege_escalation, Some(false));
            assert_eq!(pod_security_level(Some(&img)), "baseline");
        }
        assert_eq!(container_security(None).run_as_non_root, None);
    }
}
