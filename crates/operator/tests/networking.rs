//! The public edge on the local control plane with the real Gateway API CRDs: gateway mode
//! creates HTTPRoutes and the managed Gateway that the API server's schema and CEL rules accept,
//! and switching to ingress mode prunes them and creates the Ingress.

mod common;

use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams};
use serde_json::json;
use wandb_api::WeightsAndBiases;
use wandb_operator::apply::api_resource;
use wandb_testkit::{TestNamespace, wait_for};

use common::{TIMEOUT, poke_and_count_writes, start, wait_ready};

const GATEWAY_API: &str = "gateway.networking.k8s.io/v1";

fn gateway_api(ns: &TestNamespace, kind: &str) -> Api<DynamicObject> {
    Api::namespaced_with(ns.client(), ns.name(), &api_resource(GATEWAY_API, kind))
}

/// Names of the objects of `kind` that instance `w` owns.
async fn owned(api: &Api<DynamicObject>) -> Vec<String> {
    let mut names: Vec<String> = api
        .list_metadata(&ListParams::default().labels("app.kubernetes.io/instance=w"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect();
    names.sort();
    names
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn gateway_mode_routes_every_app_and_switching_to_ingress_prunes_the_routes() {
    let ns = wandb_testkit::namespace("net-gateway").await;
    wandb_testkit::install_gateway_api(&ns.client())
        .await
        .expect("installing the Gateway API CRDs");
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    ns.apply_yaml(concat!(
        "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {name: w}\nspec:\n",
        "  wandb: {hostname: https://w.example.com, version: \"0.84.0\", manifestRepository: \"builtin://\", additionalHostnames: [w.internal.example.com]}\n",
        "  networking:\n",
        "    mode: gateway\n",
        "    gatewayAPI:\n",
        "      gateway:\n",
        "        managed: true\n",
        "        gatewayClassName: eg\n",
        "        infrastructureAnnotations: {example.com/lb: internal}\n",
        "    tls: {certManager: {clusterIssuer: letsencrypt}}\n",
    ))
    .await;
    let wb: Api<WeightsAndBiases> = ns.api();
    wait_ready(&wb, "w").await;

    // One route per enabled app with manifest paths (builtin: app on /; console is behind a
    // feature that is off), stored by the API server, so its schema and CEL rules accepted it.
    let routes = gateway_api(&ns, "HTTPRoute");
    assert_eq!(owned(&routes).await, ["w-app"]);
    let app = serde_json::to_value(routes.get("w-app").await.unwrap()).unwrap();
    assert_eq!(app["spec"]["parentRefs"][0]["name"], "w-gateway");
    assert_eq!(
        app["spec"]["hostnames"],
        json!(["w.example.com", "w.internal.example.com"])
    );
    let rule = &app["spec"]["rules"][0];
    assert_eq!(
        rule["matches"],
        json!([{"path": {"type": "PathPrefix", "value": "/"}}])
    );
    assert_eq!(rule["backendRefs"][0]["name"], "w-app");
    assert_eq!(
        rule["filters"][0]["requestHeaderModifier"]["remove"],
        json!(["X-Forwarded-Host", "X-Forwarded-Port"])
    );
    let gateways = gateway_api(&ns, "Gateway");
    assert_eq!(owned(&gateways).await, ["w-gateway"]);
    let gw = serde_json::to_value(gateways.get("w-gateway").await.unwrap()).unwrap();
    assert_eq!(gw["spec"]["gatewayClassName"], "eg");
    assert_eq!(
        gw["metadata"]["annotations"]["cert-manager.io/cluster-issuer"],
        "letsencrypt"
    );
    assert_eq!(
        gw["spec"]["infrastructure"]["annotations"]["example.com/lb"],
        "internal"
    );
    let listener = &gw["spec"]["listeners"][0];
    assert_eq!(
        (&listener["port"], &listener["protocol"]),
        (&json!(443), &json!("HTTPS"))
    );
    assert_eq!(listener["tls"]["certificateRefs"][0]["name"], "w-tls");
    // Both are owned by the instance (garbage-collected with it).
    assert_eq!(gw["metadata"]["ownerReferences"][0]["name"], "w");

    // The CRDs really validate: a path the CEL rules forbid is refused.
    let bad = routes
        .patch(
            "w-app",
            &PatchParams::apply("networking-test").force(),
            &Patch::Apply(json!({
                "apiVersion": GATEWAY_API, "kind": "HTTPRoute",
                "metadata": {"name": "w-app"},
                "spec": {"rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/a//b"}}]}]},
            })),
        )
        .await;
    assert!(
        matches!(&bad, Err(kube::Error::Api(s)) if s.code == 422),
        "{bad:?}"
    );

    // The API server's defaults (parentRef group/kind, backendRef kind/weight, allowedRoutes)
    // are not drift: a reconcile of an unchanged instance writes nothing.
    let writes = poke_and_count_writes(&running, &ns, "w").await;
    assert_eq!(writes.last(), Some(&0), "writes per reconcile: {writes:?}");

    // The controller watches the Gateway API objects it owns: a deleted route, an edited route
    // and an edited Gateway are restored within seconds (the periodic pass is 5 minutes away).
    repairs_gateway_api_objects_through_the_watch(&running, &ns, &routes, &gateways).await;

    // Switching to ingress prunes the routes and the Gateway, and creates the Ingress.
    wb.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"networking": {"mode": "ingress", "gatewayAPI": null}}})),
    )
    .await
    .unwrap();
    wait_for("the Gateway API objects to be pruned", TIMEOUT, || async {
        Ok((owned(&routes).await.is_empty() && owned(&gateways).await.is_empty()).then_some(()))
    })
    .await;
    let ingresses: Api<Ingress> = ns.api();
    wait_for("the Ingress", TIMEOUT, || async {
        Ok(ingresses.get_opt("w").await?)
    })
    .await;
    wait_ready(&wb, "w").await;
    running.finish(ns).await;
}

/// How long a repair through the watch may take: well under the 5-minute periodic pass.
const REPAIR: std::time::Duration = std::time::Duration::from_secs(20);

/// Deletes the instance's route, then edits it and its Gateway by hand; each is put back.
async fn repairs_gateway_api_objects_through_the_watch(
    running: &common::Running,
    ns: &TestNamespace,
    routes: &Api<DynamicObject>,
    gateways: &Api<DynamicObject>,
) {
    // Each change is made once the controller is idle, so that only the watch can explain the
    // reconcile that repairs it (and not one still queued by the previous step).
    let idle = || common::settle(running, ns, "w");
    idle().await;
    let before = serde_json::to_value(routes.get("w-app").await.unwrap()).unwrap();
    let uid = before["metadata"]["uid"].clone();
    routes
        .delete("w-app", &Default::default())
        .await
        .expect("deleting the route");
    let restored = wait_for("the deleted HTTPRoute to be recreated", REPAIR, || async {
        Ok(routes
            .get_opt("w-app")
            .await?
            .map(|o| serde_json::to_value(o).unwrap())
            .filter(|o| o["metadata"]["uid"] != uid))
    })
    .await;
    assert_eq!(restored["spec"]["rules"], before["spec"]["rules"]);
    assert_eq!(restored["metadata"]["ownerReferences"][0]["name"], "w");

    // Edits as `kubectl edit` makes them: the route's path, then the Gateway's class.
    idle().await;
    let mut rules = before["spec"]["rules"].clone();
    rules[0]["matches"][0]["path"]["value"] = json!("/edited");
    routes
        .patch(
            "w-app",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"rules": rules}})),
        )
        .await
        .expect("editing the route");
    let edited = serde_json::to_value(routes.get("w-app").await.unwrap()).unwrap();
    assert_eq!(
        edited["spec"]["rules"][0]["matches"][0]["path"]["value"],
        "/edited"
    );
    wait_for("the edited HTTPRoute to be restored", REPAIR, || async {
        let route = serde_json::to_value(routes.get("w-app").await?).unwrap();
        Ok((route["spec"]["rules"] == before["spec"]["rules"]).then_some(()))
    })
    .await;

    idle().await;
    gateways
        .patch(
            "w-gateway",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"gatewayClassName": "edited"}})),
        )
        .await
        .expect("editing the Gateway");
    let edited = gateways.get("w-gateway").await.unwrap();
    assert_eq!(
        serde_json::to_value(&edited).unwrap()["spec"]["gatewayClassName"],
        "edited"
    );
    wait_for("the edited Gateway to be restored", REPAIR, || async {
        let gw = serde_json::to_value(gateways.get("w-gateway").await?).unwrap();
        Ok((gw["spec"]["gatewayClassName"] == "eg").then_some(()))
    })
    .await;
}

/// Whether the cluster serves HTTPRoutes (the Gateway API CRDs are installed).
async fn gateway_api_served(ns: &TestNamespace) -> bool {
    let all: Api<DynamicObject> =
        Api::all_with(ns.client(), &api_resource(GATEWAY_API, "HTTPRoute"));
    match all.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => true,
        Err(e) if wandb_operator::apply::is_not_served(&e) => false,
        Err(e) => panic!("listing HTTPRoutes: {e}"),
    }
}

/// On a control plane of its own: the shared one gets the Gateway API CRDs from the test above.
/// Ends by installing them, which the running operator must pick up.
#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn gateway_mode_without_the_gateway_api_is_stalled_with_an_event_and_the_apps_roll_out() {
    let private = wandb_testkit::private_cluster("no-gwapi").await;
    let ns = private.cluster().namespace("net-no-gwapi").await;
    assert!(
        !gateway_api_served(&ns).await,
        "a fresh control plane has no Gateway API CRDs"
    );
    let _pv = ns.start_volume_provisioner();
    let mut ctx = wandb_operator::controller::Context::new(ns.client());
    ctx.gateway_api_recheck = std::time::Duration::from_secs(1);
    let running = common::start_with(&ns, vec![ns.name().to_string()], ctx).await;
    ns.apply_yaml(concat!(
        "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {name: w}\nspec:\n",
        "  wandb: {hostname: http://w.local, version: \"0.84.0\", manifestRepository: \"builtin://\"}\n",
        "  networking: {mode: gateway, gatewayAPI: {gateway: {managed: true, gatewayClassName: eg}}}\n",
    ))
    .await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let stalled = wait_for("Stalled (GatewayAPIMissing)", TIMEOUT, || async {
        let cr = wb.get("w").await?;
        Ok(cr
            .status
            .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Stalled"))
            .filter(|c| c.status == "True" && c.reason == "GatewayAPIMissing"))
    })
    .await;
    assert!(
        stalled.message.contains(
            "networking.mode gateway needs the Gateway API CRDs (gateway.networking.k8s.io/v1) in the cluster"
        ),
        "{}",
        stalled.message
    );
    let (ready, _) = common::condition(&wb, "w", "Ready").await.unwrap();
    assert_eq!(ready, "False");
    // The rest rolled out: the applications are available.
    wait_for("ApplicationsReady", TIMEOUT, || async {
        Ok(common::condition(&wb, "w", "ApplicationsReady")
            .await
            .filter(|(s, _)| s == "True"))
    })
    .await;
    common::wait_for_event(&ns, "a GatewayAPIMissing Warning event", |e| {
        e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some("GatewayAPIMissing")
    })
    .await;

    // The Gateway API is installed while the operator runs: it notices, restarts its controller
    // with the Gateway API watches, and the instance becomes Ready without an operator restart
    // (the stalled instance's own retry is 2 minutes away) and its routes are repaired at once.
    wandb_testkit::install_gateway_api(&ns.client())
        .await
        .expect("installing the Gateway API CRDs");
    wait_ready(&wb, "w").await;
    let routes = gateway_api(&ns, "HTTPRoute");
    let gateways = gateway_api(&ns, "Gateway");
    repairs_gateway_api_objects_through_the_watch(&running, &ns, &routes, &gateways).await;
    running.finish(ns).await;
    drop(private);
}
