//! Expanding an application's references into what its pods get: env from `commonEnvs` groups
//! plus its own `env`, mounts likewise, containers with app-level fallbacks, ports by name.
//!
//! Env merge rule (the order matters because Kubernetes `$(VAR)` only sees earlier vars):
//! groups are applied in the listed order, then the app's own `env`; an entry whose name is
//! already present **replaces it in place** (keeping its position), otherwise it is appended.
//! Keeping the position means a group var such as
//! `GORILLA_RUN_UPDATE_SHADOW_QUEUE_ADDR=$(KAFKA_URL)/$(KAFKA_RUNS_V2_TOPIC_NAME)` still sees an
//! overridden `KAFKA_RUNS_V2_TOPIC_NAME`. Duplicate names are therefore allowed and not a
//! validation problem. Volume mounts follow the same rule, keyed by volume name.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::error::ManifestError;
use crate::model::{
    Application, Container, EnvVar, MigrationJob, ServerManifest, ServicePort, VolumeMount,
};

/// Name of an init container the official operator skips: migrations run as Jobs instead.
pub const SKIPPED_INIT_CONTAINER: &str = "migrate";

impl ServerManifest {
    /// The application named `name`.
    pub fn application(&self, name: &str) -> Result<&Application, ManifestError> {
        self.applications
            .get(name)
            .ok_or_else(|| ManifestError::NotInManifest {
                kind: "application",
                name: name.to_owned(),
            })
    }

    /// The migration named `name`.
    pub fn migration(&self, name: &str) -> Result<&MigrationJob, ManifestError> {
        self.migrations
            .get(name)
            .ok_or_else(|| ManifestError::NotInManifest {
                kind: "migration",
                name: name.to_owned(),
            })
    }

    /// Env of application `name`: its `commonEnvs` groups then its `env` (module docs).
    pub fn app_env(&self, name: &str) -> Result<Vec<EnvVar>, ManifestError> {
        let app = self.application(name)?;
        self.merged_env(&format!("applications.{name}"), &app.common_envs, &app.env)
    }

    /// Volume mounts of application `name`: its `commonVolumeMounts` groups then `volumeMounts`.
    pub fn app_volume_mounts(&self, name: &str) -> Result<Vec<VolumeMount>, ManifestError> {
        let app = self.application(name)?;
        self.merged_mounts(
            &format!("applications.{name}"),
            &app.common_volume_mounts,
            &app.volume_mounts,
        )
    }

    /// Env of migration `name`.
    pub fn migration_env(&self, name: &str) -> Result<Vec<EnvVar>, ManifestError> {
        let job = self.migration(name)?;
        self.merged_env(&format!("migrations.{name}"), &job.common_envs, &job.env)
    }

    /// Volume mounts of migration `name`.
    pub fn migration_volume_mounts(&self, name: &str) -> Result<Vec<VolumeMount>, ManifestError> {
        let job = self.migration(name)?;
        self.merged_mounts(
            &format!("migrations.{name}"),
            &job.common_volume_mounts,
            &job.volume_mounts,
        )
    }

    /// Expands `groups` (names in `commonEnvvars`) and lays `own` over them. `owner` names the
    /// referrer in errors (e.g. `applications.api`).
    pub fn merged_env(
        &self,
        owner: &str,
        groups: &[String],
        own: &[EnvVar],
    ) -> Result<Vec<EnvVar>, ManifestError> {
        let mut out: Vec<EnvVar> = Vec::new();
        for group in groups {
            let vars =
                self.common_envvars
                    .get(group)
                    .ok_or_else(|| ManifestError::UnknownGroup {
                        owner: owner.to_owned(),
                        field: "commonEnvs",
                        group: group.clone(),
                        section: "commonEnvvars",
                    })?;
            upsert_all(&mut out, vars, |v| &v.name);
        }
        upsert_all(&mut out, own, |v| &v.name);
        Ok(out)
    }

    /// Expands `groups` (names in `commonVolumeMounts`) and lays `own` over them.
    pub fn merged_mounts(
        &self,
        owner: &str,
        groups: &[String],
        own: &[VolumeMount],
    ) -> Result<Vec<VolumeMount>, ManifestError> {
        let mut out: Vec<VolumeMount> = Vec::new();
        for group in groups {
            let mounts = self.common_volume_mounts.get(group).ok_or_else(|| {
                ManifestError::UnknownGroup {
                    owner: owner.to_owned(),
                    field: "commonVolumeMounts",
                    group: group.clone(),
                    section: "commonVolumeMounts",
                }
            })?;
            upsert_all(&mut out, mounts, |m| &m.name);
        }
        upsert_all(&mut out, own, |m| &m.name);
        Ok(out)
    }
}

fn upsert_all<T: Clone>(out: &mut Vec<T>, items: &[T], key: impl Fn(&T) -> &String) {
    for item in items {
        match out.iter_mut().find(|e| key(e) == key(item)) {
            Some(slot) => *slot = item.clone(),
            None => out.push(item.clone()),
        }
    }
}

impl Application {
    /// Containers with `image`, `args` and `command` filled from the app where the container
    /// leaves them unset. An app without `containers` (0.79.0's `filemeta`) gets one container
    /// named `app_name`, so its image and args still run.
    pub fn effective_containers(&self, app_name: &str) -> Vec<Container> {
        if self.containers.is_empty() {
            let implicit = Container {
                name: app_name.to_owned(),
                ..Default::default()
            };
            return vec![self.inherit(&implicit)];
        }
        self.containers.iter().map(|c| self.inherit(c)).collect()
    }

    /// Init containers with the same fallbacks, without one named `migrate` (migrations are
    /// Jobs, gated before rollout).
    pub fn effective_init_containers(&self) -> Vec<Container> {
        self.init_containers
            .iter()
            .filter(|c| c.name != SKIPPED_INIT_CONTAINER)
            .map(|c| self.inherit(c))
            .collect()
    }

    fn inherit(&self, c: &Container) -> Container {
        let mut c = c.clone();
        if c.image.is_none() {
            c.image.clone_from(&self.image);
        }
        if c.args.is_none() && !self.args.is_empty() {
            c.args = Some(self.args.clone());
        }
        if c.command.is_none() && !self.command.is_empty() {
            c.command = Some(self.command.clone());
        }
        c
    }

    /// The Service port a reference designates: a number (or numeric string, as manifests write
    /// `servicePort: "8080"`) matches `port`; a name matches a Service port's name, or a
    /// container port's name through the Service port targeting it. `None` means the first port.
    pub fn find_service_port(&self, port: Option<&IntOrString>) -> Option<&ServicePort> {
        let ports = &self.service.as_ref()?.ports;
        let Some(port) = port else {
            return ports.first();
        };
        let wanted = match port {
            IntOrString::Int(n) => Ok(*n),
            IntOrString::String(s) => s.trim().parse::<i32>().map_err(|_| s.as_str()),
        };
        match wanted {
            Ok(n) => ports.iter().find(|p| p.port == n),
            Err(name) => ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name))
                .or_else(|| self.service_port_for_container_port(name)),
        }
    }

    fn service_port_for_container_port(&self, name: &str) -> Option<&ServicePort> {
        let container_port = self
            .containers
            .iter()
            .flat_map(|c| &c.ports)
            .find(|p| p.name.as_deref() == Some(name))?;
        self.service
            .as_ref()?
            .ports
            .iter()
            .find(|sp| match &sp.target_port {
                Some(IntOrString::Int(n)) => *n == container_port.container_port,
                Some(IntOrString::String(s)) => s == name,
                None => sp.port == container_port.container_port,
            })
    }

    /// The Service port the app's ingress routes to, if the app has an ingress and the port
    /// resolves.
    pub fn ingress_port(&self) -> Option<&ServicePort> {
        let ingress = self.ingress.as_ref()?;
        self.find_service_port(ingress.service_port.as_ref())
    }
}
