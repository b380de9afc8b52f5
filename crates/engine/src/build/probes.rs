//! Manifest probes become complete Kubernetes probes: missing ports point at the container's first
//! port, missing timings come from `spec.wandb.probes` then from defaults, and a startup probe is
//! derived from the readiness (else liveness) check so slow first starts are not killed.

use k8s_openapi::api::core::v1::{
    ContainerPort, ExecAction, GRPCAction, HTTPGetAction, HTTPHeader, Probe, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use wandb_api::ProbesSpec;
use wandb_manifest::Probe as ManifestProbe;

#[derive(Clone, Copy)]
pub enum Kind {
    Startup,
    Liveness,
    Readiness,
}

/// (period, timeout, failure, success)
fn defaults(kind: Kind) -> (i32, i32, i32, i32) {
    match kind {
        Kind::Startup => (5, 2, 24, 1),
        Kind::Liveness | Kind::Readiness => (10, 1, 3, 1),
    }
}

/// Builds the container's three probes. Returns (startup, liveness, readiness).
pub fn build(
    c: &wandb_manifest::Container,
    ports: &[ContainerPort],
    user: Option<&ProbesSpec>,
) -> (Option<Probe>, Option<Probe>, Option<Probe>) {
    let user_of = |k: Kind| {
        user.and_then(|u| match k {
            Kind::Startup => u.startup_probe.as_ref(),
            Kind::Liveness => u.liveness_probe.as_ref(),
            Kind::Readiness => u.readiness_probe.as_ref(),
        })
    };
    let liveness = c
        .liveness_probe
        .as_ref()
        .and_then(|p| convert(p, ports, Kind::Liveness, user_of(Kind::Liveness)));
    let readiness = c
        .readiness_probe
        .as_ref()
        .and_then(|p| convert(p, ports, Kind::Readiness, user_of(Kind::Readiness)));
    let startup = match &c.startup_probe {
        Some(p) => convert(p, ports, Kind::Startup, user_of(Kind::Startup)),
        None => c
            .readiness_probe
            .as_ref()
            .or(c.liveness_probe.as_ref())
            .map(|p| ManifestProbe {
                http_get: p.http_get.clone(),
                tcp_socket: p.tcp_socket.clone(),
                exec: p.exec.clone(),
                grpc: p.grpc.clone(),
                ..Default::default()
            })
            .and_then(|p| convert(&p, ports, Kind::Startup, user_of(Kind::Startup))),
    };
    (startup, liveness, readiness)
}

fn default_port(ports: &[ContainerPort]) -> Option<IntOrString> {
    let first = ports.first()?;
    Some(match &first.name {
        Some(n) if !n.is_empty() => IntOrString::String(n.clone()),
        _ => IntOrString::Int(first.container_port),
    })
}

fn convert(
    p: &ManifestProbe,
    ports: &[ContainerPort],
    kind: Kind,
    user: Option<&Probe>,
) -> Option<Probe> {
    let mut out = Probe::default();
    if let Some(h) = &p.http_get {
        out.http_get = Some(HTTPGetAction {
            path: h.path.clone(),
            port: h.port.clone().or_else(|| default_port(ports))?,
            scheme: h.scheme.clone(),
            host: h.host.clone(),
            http_headers: (!h.http_headers.is_empty()).then(|| {
                h.http_headers
                    .iter()
                    .map(|x| HTTPHeader {
                        name: x.name.clone(),
                        value: x.value.clone(),
                    })
                    .collect()
            }),
        });
    } else if let Some(t) = &p.tcp_socket {
        out.tcp_socket = Some(TCPSocketAction {
            port: t.port.clone().or_else(|| default_port(ports))?,
            host: t.host.clone(),
        });
    } else if let Some(e) = &p.exec {
        out.exec = Some(ExecAction {
            command: Some(e.command.clone()),
        });
    } else if let Some(g) = &p.grpc {
        out.grpc = Some(GRPCAction {
            port: g.port?,
            service: g.service.clone(),
        });
    } else if let Some(u) = user.filter(|u| {
        u.http_get.is_some() || u.tcp_socket.is_some() || u.exec.is_some() || u.grpc.is_some()
    }) {
        out.http_get = u.http_get.clone();
        out.tcp_socket = u.tcp_socket.clone();
        out.exec = u.exec.clone();
        out.grpc = u.grpc.clone();
    } else {
        return None;
    }
    let (period, timeout, failure, success) = defaults(kind);
    let pick = |manifest: Option<i32>, user: Option<i32>, default: i32| {
        Some(manifest.or(user).unwrap_or(default))
    };
    out.initial_delay_seconds = p
        .initial_delay_seconds
        .or(user.and_then(|u| u.initial_delay_seconds));
    out.period_seconds = pick(
        p.period_seconds,
        user.and_then(|u| u.period_seconds),
        period,
    );
    out.timeout_seconds = pick(
        p.timeout_seconds,
        user.and_then(|u| u.timeout_seconds),
        timeout,
    );
    out.failure_threshold = pick(
        p.failure_threshold,
        user.and_then(|u| u.failure_threshold),
        failure,
    );
    // Liveness and startup probes must have successThreshold 1.
    out.success_threshold = match kind {
        Kind::Readiness => pick(
            p.success_threshold,
            user.and_then(|u| u.success_threshold),
            success,
        ),
        _ => Some(1),
    };
    out.termination_grace_period_seconds = p.termination_grace_period_seconds;
    Some(out)
}
