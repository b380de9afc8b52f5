//! What the resource needs from the cluster: an ingress class, the Gateway API, a StorageClass.

use std::collections::BTreeSet;

use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, ResourceExt};
use serde_json::Value;
use wandb_api::NetworkingMode;
use wandb_engine::Built;

use super::Findings;
use crate::cli::Cluster;

/// The ingress class or the Gateway API, as the networking mode needs.
pub(super) async fn networking(cluster: &Cluster, built: &Built, f: &mut Findings) {
    const CHECK: &str = "networking";
    match built.instance.networking {
        NetworkingMode::Ingress => {
            let class = built
                .objects
                .iter()
                .find(|o| o.kind == "Ingress")
                .and_then(|o| o.object.pointer("/spec/ingressClassName"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let api: Api<IngressClass> = Api::all(cluster.client.clone());
            let classes = match api.list(&ListParams::default()).await {
                Ok(l) => l.items,
                Err(e) => {
                    return f.warn(
                        CHECK,
                        format!("cannot list IngressClasses: {e}"),
                        "run doctor with permission to list ingressclasses",
                    );
                }
            };
            match class {
                Some(c) if classes.iter().any(|x| x.name_any() == c) => {
                    f.ok(CHECK, format!("IngressClass {c} exists"));
                }
                Some(c) => f.error(
                    CHECK,
                    format!("IngressClass {c} (spec.networking) does not exist: nothing will serve the Ingress"),
                    "install that ingress controller, or name an existing class (kubectl get ingressclass)",
                ),
                None => {
                    let default = classes.iter().find(|x| {
                        x.annotations()
                            .get("ingressclass.kubernetes.io/is-default-class")
                            .is_some_and(|v| v == "true")
                    });
                    match default {
                        Some(d) => f.ok(CHECK, format!("no class named; the default IngressClass {} serves it", d.name_any())),
                        None => f.warn(
                            CHECK,
                            "the Ingress names no class and the cluster has no default IngressClass",
                            "set the ingress class in spec.networking, or mark one default (ingressclass.kubernetes.io/is-default-class=true)",
                        ),
                    }
                }
            }
        }
        NetworkingMode::Gateway => {
            if crate::controller::gateway_api_served(&cluster.client).await {
                f.ok(
                    CHECK,
                    "the cluster serves the Gateway API (gateway.networking.k8s.io/v1)",
                );
                gateway_class(cluster, built, f).await;
            } else {
                f.error(
                    CHECK,
                    wandb_engine::decide::status::GATEWAY_API_MISSING,
                    "install the Gateway API CRDs (standard channel) and a Gateway controller",
                );
            }
        }
        _ => {
            f.ok(
                CHECK,
                "no Ingress or Gateway needed in this networking mode",
            );
        }
    }
}

/// A managed Gateway's class must exist, or no controller programs the Gateway.
async fn gateway_class(cluster: &Cluster, built: &Built, f: &mut Findings) {
    const CHECK: &str = "networking";
    let Some(class) = built
        .objects
        .iter()
        .find(|o| o.kind == "Gateway")
        .and_then(|o| o.object.pointer("/spec/gatewayClassName"))
        .and_then(Value::as_str)
    else {
        return; // routes attach to a Gateway someone else manages
    };
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "GatewayClass"),
        "gatewayclasses",
    );
    let api: Api<DynamicObject> = Api::all_with(cluster.client.clone(), &ar);
    match api.get_opt(class).await {
        Ok(Some(_)) => f.ok(CHECK, format!("GatewayClass {class} exists")),
        Ok(None) => f.error(
            CHECK,
            format!("GatewayClass {class} does not exist: nothing will program the managed Gateway"),
            "install the Gateway controller that provides it, or name an existing class (kubectl get gatewayclass)",
        ),
        Err(e) => f.warn(
            CHECK,
            format!("cannot read GatewayClass {class}: {e}"),
            "run doctor with permission to get gatewayclasses",
        ),
    }
}

/// Managed services' volume claims need their StorageClass, or a default one.
pub(super) async fn storage(cluster: &Cluster, built: &Built, f: &mut Findings) {
    const CHECK: &str = "storage";
    let mut wanted: BTreeSet<Option<String>> = BTreeSet::new();
    for o in built.objects.iter().filter(|o| o.kind == "StatefulSet") {
        for t in o
            .object
            .pointer("/spec/volumeClaimTemplates")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            wanted.insert(
                t.pointer("/spec/storageClassName")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            );
        }
    }
    if wanted.is_empty() {
        return f.ok(CHECK, "no persistent volumes needed (no managed service)");
    }
    let api: Api<StorageClass> = Api::all(cluster.client.clone());
    let classes = match api.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => {
            return f.warn(
                CHECK,
                format!("cannot list StorageClasses: {e}"),
                "run doctor with permission to list storageclasses",
            );
        }
    };
    for w in wanted {
        match w {
            Some(c) if classes.iter().any(|x| x.name_any() == c) => {
                f.ok(CHECK, format!("StorageClass {c} exists"));
            }
            Some(c) => f.error(
                CHECK,
                format!(
                    "StorageClass {c} does not exist: the managed services' volumes stay Pending"
                ),
                "create it, or name an existing one (kubectl get storageclass)",
            ),
            None => {
                let default = classes.iter().find(|x| {
                    x.annotations()
                        .get("storageclass.kubernetes.io/is-default-class")
                        .is_some_and(|v| v == "true")
                });
                match default {
                    Some(d) => f.ok(CHECK, format!("managed services' volumes use the default StorageClass {}", d.name_any())),
                    None => f.error(
                        CHECK,
                        "managed services need volumes, they name no StorageClass and the cluster has no default one: their claims stay Pending",
                        "mark a StorageClass default (storageclass.kubernetes.io/is-default-class=true) or use external services",
                    ),
                }
            }
        }
    }
}
