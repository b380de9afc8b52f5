//! Building image references, with optional retargeting to a private registry.
//!
//! Forms accepted in manifests:
//!
//! | `registry` | `repository` | reference |
//! |---|---|---|
//! | — | `us-docker.pkg.dev/wandb-production/public/wandb/megabinary` | host inside `repository` |
//! | `quay.io` | `coreos/etcd` | `quay.io/coreos/etcd` |
//! | — | `nginxinc/nginx-unprivileged` | Docker Hub (implicit `docker.io`) |
//!
//! The first path segment of `repository` is a registry host when it contains `.` or `:` or is
//! `localhost` (the Docker rule).
//!
//! With a global registry `R` (the CR's `spec.global.imageRegistry`) the result is
//! `R/<original registry host>/<repository path>`: the original host is kept in the path, as
//! `wsm registry mirror` lays out mirrors, so images from different registries cannot collide.
//! For Docker Hub images the host is made explicit (`R/docker.io/nginxinc/nginx-unprivileged`);
//! the path is kept as written (no `library/` is inserted for single-segment names).
//!
//! Tag and digest: a digest pins content, so when both are set the result is `name@digest` and the
//! tag is dropped (`name:tag@digest` is accepted by some runtimes but not all tooling, and the tag
//! adds nothing once the digest is fixed). Neither set: no suffix (the runtime's `latest`).

use crate::model::ImageRef;

/// The implicit registry of unqualified image names.
pub const DOCKER_HUB: &str = "docker.io";

impl ImageRef {
    /// The registry host and the repository path under it (`docker.io` for bare names).
    pub fn host_and_path(&self) -> (&str, &str) {
        let repository = self.repository.trim_matches('/');
        if let Some(registry) = self.registry.as_deref().map(|r| r.trim_matches('/'))
            && !registry.is_empty()
        {
            return (registry, repository);
        }
        match repository.split_once('/') {
            Some((first, rest)) if is_registry_host(first) => (first, rest),
            _ => (DOCKER_HUB, repository),
        }
    }

    /// The full image reference to put in a pod spec; see the module docs for the rules.
    pub fn reference(&self, global_registry: Option<&str>) -> String {
        let mut out = match global_registry.map(|r| r.trim_end_matches('/')) {
            Some(global) if !global.is_empty() => {
                let (host, path) = self.host_and_path();
                format!("{global}/{host}/{path}")
            }
            _ => self.name_as_written(),
        };
        match (non_empty(&self.digest), non_empty(&self.tag)) {
            (Some(digest), _) => {
                out.push('@');
                out.push_str(digest);
            }
            (None, Some(tag)) => {
                out.push(':');
                out.push_str(tag);
            }
            (None, None) => {}
        }
        out
    }

    /// `registry/repository`, or `repository` alone, without making Docker Hub explicit (keeps
    /// references identical to what the manifest says when no retargeting is asked for).
    fn name_as_written(&self) -> String {
        let repository = self.repository.trim_matches('/');
        match self.registry.as_deref().map(|r| r.trim_matches('/')) {
            Some(registry) if !registry.is_empty() => format!("{registry}/{repository}"),
            _ => repository.to_owned(),
        }
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

fn is_registry_host(segment: &str) -> bool {
    segment.contains('.') || segment.contains(':') || segment == "localhost"
}

impl crate::model::ServerManifest {
    /// Every image the manifest references, with its YAML path, in a stable order (apps and
    /// their containers, migrations, infra, Kafka). For air-gapped installs: this is the list to
    /// mirror.
    pub fn images(&self) -> Vec<(String, &ImageRef)> {
        let mut out = Vec::new();
        for (name, app) in &self.applications {
            let path = format!("applications.{name}");
            out.extend(app.image.iter().map(|i| (format!("{path}.image"), i)));
            for (field, list) in [
                ("containers", &app.containers),
                ("initContainers", &app.init_containers),
            ] {
                for (idx, c) in list.iter().enumerate() {
                    out.extend(
                        c.image
                            .iter()
                            .map(|i| (format!("{path}.{field}[{idx}].image"), i)),
                    );
                }
            }
        }
        for (name, job) in &self.migrations {
            out.extend(
                job.image
                    .iter()
                    .map(|i| (format!("migrations.{name}.image"), i)),
            );
        }
        for kind in crate::InfraKind::ALL {
            for (instance, config) in self.infra(kind) {
                for (role, i) in &config.images {
                    out.push((format!("{}.{instance}.images.{role}", kind.key()), i));
                }
            }
        }
        for (role, i) in &self.kafka.images {
            out.push((format!("kafka.images.{role}"), i));
        }
        out
    }

    /// Applies `f` to every image (same set as [`Self::images`]).
    pub fn for_each_image_mut(&mut self, mut f: impl FnMut(&mut ImageRef)) {
        for app in self.applications.values_mut() {
            app.image.iter_mut().for_each(&mut f);
            for c in app
                .containers
                .iter_mut()
                .chain(app.init_containers.iter_mut())
            {
                c.image.iter_mut().for_each(&mut f);
            }
        }
        for job in self.migrations.values_mut() {
            job.image.iter_mut().for_each(&mut f);
        }
        for infra in [
            &mut self.bucket,
            &mut self.clickhouse,
            &mut self.clickhouse_keeper,
            &mut self.mysql,
            &mut self.redis,
        ] {
            infra
                .values_mut()
                .flat_map(|c| c.images.values_mut())
                .for_each(&mut f);
        }
        self.kafka.images.values_mut().for_each(&mut f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(
        registry: Option<&str>,
        repository: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> ImageRef {
        ImageRef {
            registry: registry.map(Into::into),
            repository: repository.into(),
            tag: tag.map(Into::into),
            digest: digest.map(Into::into),
        }
    }

    const MEGA: &str = "us-docker.pkg.dev/wandb-production/public/wandb/megabinary";
    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn registry_inside_repository() {
        let i = img(None, MEGA, Some("0.79.0"), None);
        assert_eq!(i.reference(None), format!("{MEGA}:0.79.0"));
        assert_eq!(
            i.host_and_path(),
            (
                "us-docker.pkg.dev",
                "wandb-production/public/wandb/megabinary"
            )
        );
        assert_eq!(
            i.reference(Some("registry.corp:5000/mirror")),
            "registry.corp:5000/mirror/us-docker.pkg.dev/wandb-production/public/wandb/megabinary:0.79.0"
        );
    }

    #[test]
    fn separate_registry_and_repository() {
        let i = img(Some("quay.io"), "coreos/etcd", Some("v3.5.31"), None);
        assert_eq!(i.reference(None), "quay.io/coreos/etcd:v3.5.31");
        assert_eq!(
            i.reference(Some("mirror.local/")),
            "mirror.local/quay.io/coreos/etcd:v3.5.31"
        );
        let hub = img(Some("docker.io"), "chrislusf/seaweedfs", Some("4.35"), None);
        assert_eq!(hub.reference(None), "docker.io/chrislusf/seaweedfs:4.35");
        assert_eq!(
            hub.reference(Some("r.io")),
            "r.io/docker.io/chrislusf/seaweedfs:4.35"
        );
    }

    #[test]
    fn docker_hub_bare_names() {
        let i = img(None, "nginxinc/nginx-unprivileged", Some("latest"), None);
        assert_eq!(i.reference(None), "nginxinc/nginx-unprivileged:latest");
        assert_eq!(
            i.reference(Some("r.io")),
            "r.io/docker.io/nginxinc/nginx-unprivileged:latest"
        );
        let single = img(None, "mysql", Some("8.0"), None);
        assert_eq!(single.reference(None), "mysql:8.0");
        assert_eq!(single.reference(Some("r.io")), "r.io/docker.io/mysql:8.0");
        // `amazon/aws-cli`: first segment has no dot, so it is a Docker Hub namespace.
        assert_eq!(
            img(None, "amazon/aws-cli", None, None).host_and_path(),
            ("docker.io", "amazon/aws-cli")
        );
    }

    #[test]
    fn localhost_and_port_hosts() {
        assert_eq!(
            img(None, "localhost/x/y", None, None).host_and_path(),
            ("localhost", "x/y")
        );
        assert_eq!(
            img(None, "reg:5000/y", None, None).host_and_path(),
            ("reg:5000", "y")
        );
    }

    #[test]
    fn digest_wins_over_tag() {
        let i = img(
            Some("ghcr.io"),
            "cybozu-go/moco/mysql",
            Some("8.4.8"),
            Some(DIGEST),
        );
        assert_eq!(
            i.reference(None),
            format!("ghcr.io/cybozu-go/moco/mysql@{DIGEST}")
        );
        assert_eq!(
            i.reference(Some("r.io")),
            format!("r.io/ghcr.io/cybozu-go/moco/mysql@{DIGEST}")
        );
        let only_digest = img(None, MEGA, None, Some(DIGEST));
        assert_eq!(only_digest.reference(None), format!("{MEGA}@{DIGEST}"));
    }

    #[test]
    fn no_tag_no_digest_and_empty_values() {
        assert_eq!(
            img(None, "wandb/local", None, None).reference(None),
            "wandb/local"
        );
        let empty = img(Some(""), "wandb/local", Some(""), Some(""));
        assert_eq!(empty.reference(Some("")), "wandb/local");
    }
}
