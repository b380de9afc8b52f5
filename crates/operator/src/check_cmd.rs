//! `wandb-operator check`: the chart's `helm test`. Run in the cluster (the operator image, a
//! ServiceAccount that may read the operator's Deployment), it passes when the API server serves
//! `apps.wandb.com/v2` `weightsandbiases` and the operator's Deployment has rolled out with at
//! least one available replica; otherwise it says which is missing and exits 1.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;

#[derive(clap::Args)]
pub struct CheckArgs {
    /// Namespace of the operator's Deployment.
    #[arg(long, env = "POD_NAMESPACE")]
    namespace: String,
    /// Name of the operator's Deployment.
    #[arg(long)]
    deployment: String,
    /// How long to wait for both conditions, in seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

pub fn run(args: &CheckArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("check: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(check(args))
}

async fn check(args: &CheckArgs) -> ExitCode {
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("check: no Kubernetes client configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    loop {
        let crd = crd_served(&client).await;
        let deployment = deployment_ready(&client, &args.namespace, &args.deployment).await;
        match (&crd, &deployment) {
            (Ok(c), Ok(d)) => {
                println!("ok: {c}");
                println!("ok: {d}");
                return ExitCode::SUCCESS;
            }
            _ if Instant::now() >= deadline => {
                for r in [crd, deployment] {
                    match r {
                        Ok(m) => println!("ok: {m}"),
                        Err(m) => println!("FAILED: {m}"),
                    }
                }
                return ExitCode::FAILURE;
            }
            _ => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}

/// Discovery (open to every authenticated client) lists the resource once the CRD is
/// Established and serves v2.
async fn crd_served(client: &kube::Client) -> Result<String, String> {
    let resources = client
        .list_api_group_resources("apps.wandb.com/v2")
        .await
        .map_err(|e| format!("the API server does not serve apps.wandb.com/v2: {e}"))?;
    if resources
        .resources
        .iter()
        .any(|r| r.name == "weightsandbiases")
    {
        Ok("the API server serves apps.wandb.com/v2 weightsandbiases".into())
    } else {
        Err("apps.wandb.com/v2 is served without the weightsandbiases resource".into())
    }
}

async fn deployment_ready(client: &kube::Client, ns: &str, name: &str) -> Result<String, String> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let d = api
        .get(name)
        .await
        .map_err(|e| format!("cannot read Deployment {ns}/{name}: {e}"))?;
    let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.unwrap_or_default();
    let current = status.observed_generation >= d.metadata.generation;
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if current && updated >= wanted && available >= 1 {
        Ok(format!(
            "Deployment {ns}/{name} rolled out: {available}/{wanted} replicas available"
        ))
    } else {
        Err(format!(
            "Deployment {ns}/{name} not ready: {updated}/{wanted} updated, {available} available{}",
            if current {
                ""
            } else {
                ", rollout not observed yet"
            }
        ))
    }
}
