//! Structural checks of a merged manifest, reporting every problem with the place to fix it.
//!
//! Parsing is deliberately lenient (see [`crate::model`]); this is where missing required fields,
//! dangling references and unsupported kinds are caught, before anything is built from the
//! manifest. Errors make the manifest unusable; warnings are things the engine can work around
//! (an unknown env source type: the var falls back to its `defaultValue`).
//!
//! Not a problem: the same env name in several `commonEnvs` groups and the app's `env` (the later
//! one replaces the earlier, see [`crate::compose`]).

use std::collections::BTreeSet;
use std::fmt;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::error::ManifestError;
use crate::model::{
    Application, Container, EnvSourceType, EnvVar, ImageRef, Probe, ServerManifest, Sizing,
    VolumeMount, VolumeSourceType,
};

/// How bad a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The engine may proceed; the message says what it will do.
    Warning,
    /// The manifest cannot be used as is.
    Error,
}

/// One finding: `path` is the YAML path (`applications.api.ingress.servicePort`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{level}: {}: {}", self.path, self.message)
    }
}

impl ServerManifest {
    /// All problems found, errors and warnings, in manifest order.
    pub fn validate(&self) -> Vec<Problem> {
        let mut c = Checker {
            m: self,
            out: Vec::new(),
        };
        c.manifest();
        c.out
    }

    /// `Ok(warnings)` when there is no error, else [`ManifestError::Invalid`] with every problem.
    pub fn ensure_valid(&self) -> Result<Vec<Problem>, ManifestError> {
        let problems = self.validate();
        if problems.iter().any(|p| p.severity == Severity::Error) {
            Err(ManifestError::Invalid(problems))
        } else {
            Ok(problems)
        }
    }
}

struct Checker<'a> {
    m: &'a ServerManifest,
    out: Vec<Problem>,
}

impl Checker<'_> {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, path.into(), message.into());
    }
    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warning, path.into(), message.into());
    }
    fn push(&mut self, severity: Severity, path: String, message: String) {
        self.out.push(Problem {
            severity,
            path,
            message,
        });
    }

    fn manifest(&mut self) {
        let m = self.m;
        let mut seen = BTreeSet::new();
        for (i, s) in m.generated_secrets.iter().enumerate() {
            let path = format!("generatedSecrets[{i}]");
            if s.name.is_empty() {
                self.err(&path, "name is missing");
            } else if !seen.insert(&s.name) {
                self.err(&path, format!("secret {:?} is declared twice", s.name));
            }
            if s.length == 0 {
                self.err(format!("{path}.length"), "must be at least 1");
            }
        }
        let mut seen = BTreeSet::new();
        for (i, t) in m.kafka.topics.iter().enumerate() {
            let path = format!("kafka.topics[{i}]");
            if t.name.is_empty() || t.topic.is_empty() {
                self.err(&path, "name and topic are required");
            } else if !seen.insert(&t.name) {
                self.err(&path, format!("topic {:?} is declared twice", t.name));
            }
            if t.partition_count.is_some_and(|n| n < 1) {
                self.err(format!("{path}.partitionCount"), "must be at least 1");
            }
        }
        for (group, vars) in &m.common_envvars {
            self.env(&format!("commonEnvvars.{group}"), vars);
        }
        for (group, mounts) in &m.common_volume_mounts {
            self.mounts(&format!("commonVolumeMounts.{group}"), mounts);
        }
        for (name, app) in &m.applications {
            self.application(name, app);
        }
        for (name, job) in &m.migrations {
            let path = format!("migrations.{name}");
            self.image(&format!("{path}.image"), job.image.as_ref());
            self.groups(&path, &job.common_envs, &job.common_volume_mounts);
            self.env(&format!("{path}.env"), &job.env);
            self.mounts(&format!("{path}.volumeMounts"), &job.volume_mounts);
        }
    }

    fn application(&mut self, name: &str, app: &Application) {
        let path = format!("applications.{name}");
        if !app.name.is_empty() && app.name != name {
            self.warn(
                format!("{path}.name"),
                format!(
                    "is {:?}; the key {name:?} is used as the application name",
                    app.name
                ),
            );
        }
        self.groups(&path, &app.common_envs, &app.common_volume_mounts);
        self.env(&format!("{path}.env"), &app.env);
        self.mounts(&format!("{path}.volumeMounts"), &app.volume_mounts);

        // Without containers the app-level image is the only one, so it is required.
        if app.image.is_some() || app.containers.is_empty() {
            self.image(&format!("{path}.image"), app.image.as_ref());
        }
        self.containers(&format!("{path}.containers"), app, &app.containers);
        self.containers(&format!("{path}.initContainers"), app, &app.init_containers);

        if let Some(service) = &app.service {
            if service.ports.is_empty() {
                self.err(
                    format!("{path}.service.ports"),
                    "a Service needs at least one port",
                );
            }
            for (i, p) in service.ports.iter().enumerate() {
                self.port(&format!("{path}.service.ports[{i}].port"), p.port);
            }
        }
        if let Some(ingress) = &app.ingress {
            let ipath = format!("{path}.ingress");
            if ingress.paths.is_empty() {
                self.err(
                    format!("{ipath}.paths"),
                    "an ingress needs at least one path",
                );
            }
            if app.service.is_none() {
                self.err(&ipath, "the app has an ingress but no service to route to");
            } else if app.ingress_port().is_none() {
                let wanted = match &ingress.service_port {
                    Some(IntOrString::Int(n)) => n.to_string(),
                    Some(IntOrString::String(s)) => format!("{s:?}"),
                    None => "(first port)".to_owned(),
                };
                self.err(
                    format!("{ipath}.servicePort"),
                    format!(
                        "{wanted} names no port of the app's service (ports: {})",
                        ports_text(app)
                    ),
                );
            }
        }
        for (i, f) in app.files.iter().enumerate() {
            let fpath = format!("{path}.files[{i}]");
            if f.name.is_empty() || f.mount_path.is_empty() {
                self.err(&fpath, "name and mountPath are required");
            }
            if f.inline.is_some() == f.config_map_ref.is_some() {
                self.err(&fpath, "set exactly one of inline and configMapRef");
            }
        }
        for (i, t) in app.jwt_tokens.iter().enumerate() {
            let tpath = format!("{path}.jwtTokens[{i}]");
            if t.name.is_empty() || t.mount_path.is_empty() {
                self.err(&tpath, "name and mountPath are required");
            }
            let s = &t.source;
            let n = [
                s.kubernetes_service_account.is_some(),
                s.secret_ref.is_some(),
                s.csi_provider.is_some(),
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if n != 1 {
                self.err(
                    format!("{tpath}.source"),
                    "set exactly one of kubernetesServiceAccount, secretRef and csiProvider",
                );
            }
        }
        for (size, sizing) in &app.sizing {
            self.sizing(&format!("{path}.sizing.{size}"), sizing);
        }
    }

    fn containers(&mut self, path: &str, app: &Application, containers: &[Container]) {
        let mut names = BTreeSet::new();
        for (i, c) in containers.iter().enumerate() {
            let cpath = format!("{path}[{i}]");
            if c.name.is_empty() {
                self.err(format!("{cpath}.name"), "is missing");
            } else if !names.insert(&c.name) {
                self.err(
                    format!("{cpath}.name"),
                    format!("container {:?} is declared twice", c.name),
                );
            }
            match &c.image {
                Some(image) => self.image(&format!("{cpath}.image"), Some(image)),
                None if app.image.is_none() => {
                    self.err(
                        format!("{cpath}.image"),
                        "no image here and none on the application",
                    );
                }
                None => {}
            }
            for (j, p) in c.ports.iter().enumerate() {
                self.port(
                    &format!("{cpath}.ports[{j}].containerPort"),
                    p.container_port,
                );
            }
            for (field, probe) in [
                ("livenessProbe", &c.liveness_probe),
                ("readinessProbe", &c.readiness_probe),
                ("startupProbe", &c.startup_probe),
            ] {
                if let Some(probe) = probe {
                    self.probe(&format!("{cpath}.{field}"), probe);
                }
            }
        }
    }

    fn probe(&mut self, path: &str, p: &Probe) {
        let handlers = [
            p.http_get.is_some(),
            p.tcp_socket.is_some(),
            p.exec.is_some(),
            p.grpc.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if handlers != 1 {
            self.err(path, "set exactly one of httpGet, tcpSocket, exec and grpc");
        }
    }

    fn image(&mut self, path: &str, image: Option<&ImageRef>) {
        match image {
            None => self.err(path, "is missing"),
            Some(i) if i.repository.trim().is_empty() => {
                self.err(format!("{path}.repository"), "is missing")
            }
            Some(_) => {}
        }
    }

    fn port(&mut self, path: &str, port: i32) {
        if !(1..=65535).contains(&port) {
            self.err(path, format!("{port} is not a port number (1-65535)"));
        }
    }

    fn groups(&mut self, path: &str, envs: &[String], mounts: &[String]) {
        for (i, g) in envs.iter().enumerate() {
            if !self.m.common_envvars.contains_key(g) {
                self.err(
                    format!("{path}.commonEnvs[{i}]"),
                    format!("group {g:?} is not defined in commonEnvvars"),
                );
            }
        }
        for (i, g) in mounts.iter().enumerate() {
            if !self.m.common_volume_mounts.contains_key(g) {
                self.err(
                    format!("{path}.commonVolumeMounts[{i}]"),
                    format!("group {g:?} is not defined in commonVolumeMounts"),
                );
            }
        }
    }

    fn env(&mut self, path: &str, vars: &[EnvVar]) {
        for (i, v) in vars.iter().enumerate() {
            let vpath = format!("{path}[{i}]");
            if v.name.is_empty() {
                self.err(format!("{vpath}.name"), "is missing");
            }
            for (j, s) in v.sources.iter().enumerate() {
                let spath = format!("{vpath}.sources[{j}]");
                let name = s.name.as_deref().unwrap_or("");
                match &s.kind {
                    EnvSourceType::Unknown(t) if t.is_empty() => self.err(format!("{spath}.type"), "is missing"),
                    EnvSourceType::Unknown(t) => self.warn(
                        format!("{spath}.type"),
                        format!("unknown source type {t:?} is skipped (the var falls back to defaultValue)"),
                    ),
                    EnvSourceType::GeneratedSecret
                        if !self.m.generated_secrets.iter().any(|g| g.name == name) =>
                    {
                        self.err(format!("{spath}.name"), format!("{name:?} is not in generatedSecrets"));
                    }
                    EnvSourceType::CustomResource if s.field.as_deref().unwrap_or("").is_empty() => {
                        self.err(format!("{spath}.field"), "a custom-resource source needs the CR path in field");
                    }
                    EnvSourceType::Service => self.service_source(&spath, name, s.port.as_ref()),
                    _ => {}
                }
            }
        }
    }

    fn service_source(&mut self, path: &str, app: &str, port: Option<&IntOrString>) {
        match self.m.applications.get(app) {
            None if app.is_empty() => self.err(format!("{path}.name"), "a service source needs the app name"),
            None => self.warn(
                format!("{path}.name"),
                format!("no application {app:?} in the manifest; the var resolves only if such a Service exists"),
            ),
            Some(target) if target.find_service_port(port).is_none() => self.err(
                format!("{path}.port"),
                format!("application {app:?} has no matching service port (ports: {})", ports_text(target)),
            ),
            Some(_) => {}
        }
    }

    fn mounts(&mut self, path: &str, mounts: &[VolumeMount]) {
        for (i, m) in mounts.iter().enumerate() {
            let mpath = format!("{path}[{i}]");
            if m.name.is_empty() || m.mount_path.is_empty() {
                self.err(&mpath, "name and mountPath are required");
            }
            match &m.source.kind {
                VolumeSourceType::Unknown(t) => self.err(
                    format!("{mpath}.source.type"),
                    format!("volume source type {t:?} is not supported (use secret, configMap or emptyDir)"),
                ),
                VolumeSourceType::Secret | VolumeSourceType::ConfigMap if m.source.name.is_empty() => {
                    self.err(format!("{mpath}.source.name"), "names no Secret or ConfigMap");
                }
                _ => {}
            }
        }
    }

    fn sizing(&mut self, path: &str, s: &Sizing) {
        let Some(h) = s.autoscaling.as_ref().and_then(|a| a.horizontal.as_ref()) else {
            return;
        };
        if let (Some(min), Some(max)) = (h.min_replicas, h.max_replicas)
            && min > max
        {
            self.warn(
                format!("{path}.autoscaling.horizontal"),
                format!("minReplicas {min} > maxReplicas {max}; maxReplicas is raised to {min}"),
            );
        }
    }
}

fn ports_text(app: &Application) -> String {
    let ports: Vec<String> = app
        .service
        .iter()
        .flat_map(|s| &s.ports)
        .map(|p| match &p.name {
            Some(n) => format!("{n}/{}", p.port),
            None => p.port.to_string(),
        })
        .collect();
    if ports.is_empty() {
        "none".to_owned()
    } else {
        ports.join(", ")
    }
}
