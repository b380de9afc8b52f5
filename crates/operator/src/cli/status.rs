//! `status NAME`: one screen on an instance: Ready or not and why (the first failing gate, as the
//! Ready condition words it), versions, URL, components with their images, backing services with
//! their endpoint (never credentials) and preflight, migrations, recent warnings. Exit 0 when
//! Ready, 1 when not; `-o json` for scripts.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Event, PodSpec, Secret};
use kube::api::ListParams;
use kube::{Api, ResourceExt};
use serde::Serialize;
use wandb_api::{InfraMode, InfraState, WeightsAndBiases};
use wandb_engine::names;

use super::{Cluster, KubeArgs, fail};

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum Output {
    #[default]
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Name of the WeightsAndBiases resource.
    pub name: String,
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// How many recent warning events to show.
    #[arg(long, default_value_t = 10)]
    pub events: usize,
}

/// Everything `status` shows.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub name: String,
    pub namespace: String,
    pub ready: bool,
    /// Why it is not Ready: the Ready condition's reason and message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Progress needs a user's action.
    pub stalled: bool,
    /// What the operator is working on (the Reconciling condition).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// The status describes an older spec: the operator has not looked at the latest change.
    pub status_outdated: bool,
    pub desired_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub components: Vec<Component>,
    pub services: Vec<Service>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrations: Option<Migrations>,
    /// The backups taken before upgrades (`status.wandb.backups`), oldest first.
    pub backups: Vec<Backup>,
    pub warnings: Vec<Warning>,
}

/// One backup of `status.wandb.backups`, with the ID `restore --backup` takes.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backup {
    /// The dump's file name (the unique end of its location `restore` accepts); for an
    /// acknowledged external backup, the snapshot id.
    pub id: String,
    pub service: String,
    pub from_version: String,
    pub to_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    pub location: String,
}

impl From<&wandb_api::BackupRecord> for Backup {
    fn from(r: &wandb_api::BackupRecord) -> Self {
        Backup {
            id: if r.job.is_some() {
                r.location
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            } else {
                r.location.clone()
            },
            service: r.service.clone(),
            from_version: r.from_version.clone(),
            to_version: r.to_version.clone(),
            time: r.time.clone(),
            location: r.location.clone(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    pub name: String,
    pub ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<String>,
    pub images: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub kind: String,
    pub instance: String,
    pub mode: String,
    pub state: String,
    /// Scheme, host, port and path of the connection; never credentials or query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `ok`, `failed: ...`, or absent (managed services are not preflighted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preflight: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Migrations {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Warning {
    pub object: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
}

pub fn run(args: &StatusArgs) -> ExitCode {
    super::block_on(async {
        let cluster = match args.kube.connect().await {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        let report = match report(&cluster, &args.name, args.events).await {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        match args.output {
            Output::Json => println!(
                "{}",
                serde_json::to_string_pretty(&report).expect("reports serialize")
            ),
            Output::Text => print!("{}", text(&report)),
        }
        if report.ready {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}

/// Reads the instance, its workloads, connection Secrets and events.
pub async fn report(cluster: &Cluster, name: &str, events: usize) -> Result<Report, String> {
    let cr = super::get_cr(cluster, name).await?;
    let ns = cluster.namespace.clone();
    let status = cr.status.clone().unwrap_or_default();
    let cond = |t: &str| status.conditions.iter().find(|c| c.type_ == t);
    let ready_cond = cond("Ready");
    let ready = status.ready && ready_cond.is_some_and(|c| c.status == "True");
    let why = match ready_cond {
        _ if ready => None,
        Some(c) => Some(format!("{}: {}", c.reason, c.message)),
        None => Some("the operator has not reported on this resource yet (is it running and watching this namespace?)".into()),
    };
    let waiting_for = cond("Reconciling")
        .filter(|c| c.status == "True" && !c.message.is_empty())
        .map(|c| c.message.clone());
    let stalled = cond("Stalled").is_some_and(|c| c.status == "True");
    let status_outdated = status.observed_generation < cr.metadata.generation;

    let images = workload_images(cluster, name).await?;
    let components = status
        .components
        .iter()
        .map(|(component, c)| Component {
            name: component.clone(),
            ready: c.ready,
            replicas: c.replicas.clone(),
            images: images.get(component).cloned().unwrap_or_default(),
            message: c.message.clone(),
        })
        .collect();

    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), &ns);
    let mut services = Vec::new();
    for (kind, instances) in &status.infra {
        for (instance, s) in instances {
            // `None`: the connection Secret is not written (yet).
            let endpoint: Option<String> = match &s.connection_secret {
                Some(secret) => match secrets.get_opt(secret).await {
                    Ok(Some(sec)) => Some(
                        crate::user_secrets::values(sec)
                            .get("url")
                            .map_or_else(|| "-".into(), |u| endpoint(u)),
                    ),
                    Ok(None) => None,
                    Err(e) => Some(format!("unknown (cannot read Secret {secret}: {e})")),
                },
                None => None,
            };
            let preflight = match (s.mode, s.state) {
                (InfraMode::Managed, _) => None,
                (InfraMode::External, _) if endpoint.is_none() => {
                    Some("not run (its connection Secret is not written)".into())
                }
                (InfraMode::External, InfraState::Degraded) => Some(format!(
                    "failed: {}",
                    s.message
                        .as_deref()
                        .unwrap_or_default()
                        .trim_start_matches("preflight: ")
                )),
                (InfraMode::External, InfraState::Healthy) => Some("ok".into()),
                (InfraMode::External, _) => Some("not run yet".into()),
            };
            services.push(Service {
                kind: kind.clone(),
                instance: instance.clone(),
                mode: s.mode.to_string(),
                state: s.state.to_string(),
                endpoint,
                preflight,
                message: s
                    .message
                    .clone()
                    .filter(|_| s.state != InfraState::Degraded),
            });
        }
    }
    let migrations = status
        .wandb
        .as_ref()
        .and_then(|w| w.migration.as_ref())
        .map(|m| Migrations {
            version: m.version.clone(),
            phase: m.phase.map(|p| p.to_string()),
            last_success_version: m.last_success_version.clone(),
            reason: m.reason.clone(),
        });
    Ok(Report {
        name: name.to_string(),
        namespace: ns.clone(),
        ready,
        why,
        stalled,
        waiting_for,
        status_outdated,
        desired_version: cr.spec.wandb.version.clone(),
        running_version: status.version.clone(),
        url: status.url.clone(),
        components,
        services,
        migrations,
        backups: status
            .wandb
            .as_ref()
            .map(|w| w.backups.iter().map(Backup::from).collect())
            .unwrap_or_default(),
        warnings: warnings(cluster, &cr, events).await?,
    })
}

/// Images of the instance's Deployments and StatefulSets by component label.
async fn workload_images(
    cluster: &Cluster,
    name: &str,
) -> Result<BTreeMap<String, Vec<String>>, String> {
    let lp = ListParams::default().labels(&instance_selector(name));
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add = |labels: &BTreeMap<String, String>, spec: Option<&PodSpec>| {
        let Some(component) = labels.get(names::COMPONENT_LABEL) else {
            return;
        };
        let images = out.entry(component.clone()).or_default();
        for c in spec.into_iter().flat_map(|s| s.containers.iter()) {
            if let Some(i) = &c.image
                && !images.contains(i)
            {
                images.push(i.clone());
            }
        }
    };
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    for d in deployments
        .list(&lp)
        .await
        .map_err(|e| format!("listing Deployments: {e}"))?
    {
        let spec = d.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        add(d.labels(), spec);
    }
    let sts: Api<StatefulSet> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    for s in sts
        .list(&lp)
        .await
        .map_err(|e| format!("listing StatefulSets: {e}"))?
    {
        let spec = s.spec.as_ref().and_then(|s| s.template.spec.as_ref());
        add(s.labels(), spec);
    }
    Ok(out)
}

/// The label selector of what the operator made for instance `name`.
pub fn instance_selector(name: &str) -> String {
    format!(
        "{}={},{}={}",
        names::INSTANCE_LABEL,
        names::label_value(name),
        names::MANAGED_BY_LABEL,
        names::MANAGED_BY
    )
}

/// Recent Warning events of the instance and of the objects named after it, newest first.
async fn warnings(
    cluster: &Cluster,
    cr: &WeightsAndBiases,
    limit: usize,
) -> Result<Vec<Warning>, String> {
    let api: Api<Event> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let list = api
        .list(&ListParams::default().fields("type=Warning"))
        .await
        .map_err(|e| format!("listing events: {e}"))?;
    let name = cr.name_any();
    let prefix = format!("{name}-");
    let mut items: Vec<Event> = list
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object
                .name
                .as_deref()
                .is_some_and(|n| n == name || n.starts_with(&prefix))
        })
        .collect();
    items.sort_by_key(|e| std::cmp::Reverse(last_seen(e)));
    Ok(items
        .into_iter()
        .take(limit)
        .map(|e| Warning {
            object: format!(
                "{}/{}",
                e.involved_object.kind.clone().unwrap_or_default(),
                e.involved_object.name.clone().unwrap_or_default()
            ),
            reason: e.reason.clone().unwrap_or_default(),
            message: super::redact::redact_urls(e.message.as_deref().unwrap_or_default()),
            count: e
                .series
                .as_ref()
                .and_then(|s| s.count)
                .or(e.count)
                .unwrap_or(1),
            last_seen: last_seen(&e),
        })
        .collect())
}

/// When an event last happened (RFC 3339), from whichever field its reporter set.
fn last_seen(e: &Event) -> Option<String> {
    e.series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref())
        .map(|t| t.0.to_string())
        .or_else(|| e.last_timestamp.as_ref().map(|t| t.0.to_string()))
        .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
        .or_else(|| {
            e.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
        })
}

/// `scheme://host:port/path` of a connection URL: user information and query dropped.
pub fn endpoint(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    match scheme {
        Some(s) => format!("{s}://{rest}"),
        None => rest.to_string(),
    }
}

/// The human screen.
pub fn text(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let state = if r.ready { "Ready" } else { "NOT READY" };
    let _ = writeln!(o, "{}/{}: {state}", r.namespace, r.name);
    if let Some(why) = &r.why {
        let _ = writeln!(o, "  {}: {why}", if r.stalled { "stalled" } else { "why" });
    }
    if let Some(w) = &r.waiting_for
        && r.why
            .as_deref()
            .is_none_or(|why| !why.ends_with(w.as_str()))
    {
        let _ = writeln!(o, "  waiting for: {w}");
    }
    if r.status_outdated {
        let _ = writeln!(
            o,
            "  note: the status is for an older spec; the operator has not acted on the latest change yet"
        );
    }
    let _ = writeln!(
        o,
        "version: {} running, {} desired",
        r.running_version.as_deref().unwrap_or("none"),
        r.desired_version
    );
    let _ = writeln!(o, "url: {}", r.url.as_deref().unwrap_or("-"));
    let _ = writeln!(o, "\ncomponents:");
    if r.components.is_empty() {
        let _ = writeln!(o, "  (none yet)");
    }
    for c in &r.components {
        let _ = writeln!(
            o,
            "  {:<24} {:<9} {:<6} {}{}",
            c.name,
            if c.ready { "ready" } else { "not-ready" },
            c.replicas.as_deref().unwrap_or("-"),
            c.images.join(", "),
            c.message
                .as_ref()
                .map(|m| format!("  ({m})"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(o, "\nbacking services:");
    if r.services.is_empty() {
        let _ = writeln!(o, "  (none)");
    }
    for s in &r.services {
        let _ = writeln!(
            o,
            "  {:<24} {:<9} {:<9} {}{}{}",
            format!("{}/{}", s.kind, s.instance),
            s.mode,
            s.state,
            s.endpoint.as_deref().unwrap_or("-"),
            s.preflight
                .as_ref()
                .map(|p| format!("  preflight {p}"))
                .unwrap_or_default(),
            s.message
                .as_ref()
                .map(|m| format!("  ({m})"))
                .unwrap_or_default()
        );
    }
    if let Some(m) = &r.migrations {
        let _ = writeln!(
            o,
            "\nmigrations: {} for {} (last succeeded: {}){}",
            m.phase.as_deref().unwrap_or("unknown"),
            m.version.as_deref().unwrap_or("-"),
            m.last_success_version.as_deref().unwrap_or("none"),
            m.reason
                .as_ref()
                .map(|x| format!(": {x}"))
                .unwrap_or_default()
        );
    }
    if !r.backups.is_empty() {
        let _ = writeln!(
            o,
            "\nbackups (oldest first; `wandb-operator restore {} --backup ID`):",
            r.name
        );
        for b in &r.backups {
            let _ = writeln!(
                o,
                "  {:<40} {:<20} {} -> {}  {}  {}",
                b.id,
                b.service,
                b.from_version,
                b.to_version,
                b.time.as_deref().unwrap_or("-"),
                b.location
            );
        }
    }
    let _ = writeln!(o, "\nrecent warnings:");
    if r.warnings.is_empty() {
        let _ = writeln!(o, "  (none)");
    }
    for w in &r.warnings {
        let _ = writeln!(
            o,
            "  {} {} {}{}: {}",
            w.last_seen.as_deref().unwrap_or("-"),
            w.object,
            w.reason,
            if w.count > 1 {
                format!(" (x{})", w.count)
            } else {
                String::new()
            },
            w.message
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_never_carry_credentials() {
        assert_eq!(
            endpoint("mysql://wandb:pw@db.example.com:3306/wandb?tls=true"),
            "mysql://db.example.com:3306/wandb"
        );
        assert_eq!(endpoint("s3://AKIA:se/cr@t@bucket?region=x"), "s3://bucket");
        assert_eq!(endpoint("redis://r:6379"), "redis://r:6379");
    }
}
