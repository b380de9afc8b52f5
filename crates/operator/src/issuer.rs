//! Can W&B's internal service auth check the ServiceAccount tokens weave-trace presents? The
//! apps read the issuer's OIDC discovery document (and from it its keys), and may do so without
//! credentials, as the official deployers assume (docs/security.md). So the operator reads the
//! API server's document the same way, anonymously, and reports in the `InternalServiceAuth`
//! condition (not gating Ready) when it is refused, unreachable, or names another issuer than
//! the one the apps trust.

use kube::Client;
pub use wandb_engine::decide::IssuerCheck;

/// Where an issuer publishes its discovery document (OpenID Connect Discovery 1.0).
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// Why a fetch of the discovery document failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetch {
    /// HTTP 401 or 403.
    Refused(u16),
    Failed(String),
}

/// Reads the API server's discovery document with `anonymous` (no credentials) and, when that
/// is refused, with the operator's own `client` (to learn the issuer all the same).
pub async fn check(anonymous: &Client, client: &Client, configured: &str) -> IssuerCheck {
    match issuer_of(anonymous).await {
        Ok(actual) => judge(configured, &actual, None),
        Err(Fetch::Refused(code)) => match issuer_of(client).await {
            Ok(actual) => judge(configured, &actual, Some(code)),
            Err(e) => unreachable(configured, &e),
        },
        Err(e) => unreachable(configured, &e),
    }
}

async fn issuer_of(client: &Client) -> Result<String, Fetch> {
    let req = http::Request::get(DISCOVERY_PATH)
        .body(Vec::new())
        .expect("a static request");
    let text = match client.request_text(req).await {
        Ok(t) => t,
        Err(kube::Error::Api(s)) if s.code == 401 || s.code == 403 => {
            return Err(Fetch::Refused(s.code));
        }
        Err(e) => return Err(Fetch::Failed(e.to_string())),
    };
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Fetch::Failed(format!("not JSON: {e}")))?;
    doc["issuer"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Fetch::Failed("the document names no issuer".into()))
}

fn unreachable(configured: &str, e: &Fetch) -> IssuerCheck {
    let why = match e {
        Fetch::Refused(code) => format!("HTTP {code}"),
        Fetch::Failed(m) => m.clone(),
    };
    IssuerCheck {
        ok: false,
        reason: wandb_api::Reason::ISSUER_UNREACHABLE,
        message: format!(
            "the API server's ServiceAccount issuer discovery document ({DISCOVERY_PATH}) could \
             not be read ({why}); W&B checks weave-trace's tokens against issuer {configured}"
        ),
    }
}

/// Whether `issuer` is the cluster's own API server (its in-cluster Service name), whose
/// discovery document the apps read through the cluster's RBAC; another issuer (EKS, GKE, AKS)
/// publishes it itself.
pub fn served_by_api_server(issuer: &str) -> bool {
    let host = issuer
        .split_once("://")
        .map_or(issuer, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    matches!(
        host,
        "kubernetes"
            | "kubernetes.default"
            | "kubernetes.default.svc"
            | "kubernetes.default.svc.cluster.local"
    )
}

/// The verdict: `actual` is the issuer the cluster's tokens carry; `anonymous_refused` the HTTP
/// status an anonymous read got, if refused.
pub fn judge(configured: &str, actual: &str, anonymous_refused: Option<u16>) -> IssuerCheck {
    let same = configured.trim_end_matches('/') == actual.trim_end_matches('/');
    if !same {
        return IssuerCheck {
            ok: false,
            reason: wandb_api::Reason::ISSUER_MISMATCH,
            message: format!(
                "the cluster issues ServiceAccount tokens as {actual}, but W&B trusts {configured}: \
                 set spec.wandb.internalServiceAuth.oidcIssuer to {actual}"
            ),
        };
    }
    match anonymous_refused {
        Some(code) if served_by_api_server(actual) => IssuerCheck {
            ok: false,
            reason: wandb_api::Reason::ISSUER_DISCOVERY_FORBIDDEN,
            message: format!(
                "clients without credentials may not read {actual}{DISCOVERY_PATH} (HTTP {code}); \
                 W&B may read it that way to check weave-trace's tokens: bind \
                 system:service-account-issuer-discovery to system:unauthenticated (chart value \
                 rbac.unauthenticatedIssuerDiscovery=true; see docs/security.md)"
            ),
        },
        _ => IssuerCheck {
            ok: true,
            reason: wandb_api::Reason::AS_EXPECTED,
            message: if served_by_api_server(actual) {
                format!("issuer {actual}: its discovery document is readable without credentials")
            } else {
                format!("issuer {actual} publishes its own discovery document")
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IN_CLUSTER: &str = "https://kubernetes.default.svc.cluster.local";

    #[test]
    fn verdicts() {
        let ok = judge(IN_CLUSTER, IN_CLUSTER, None);
        assert!(ok.ok, "{ok:?}");
        let refused = judge(IN_CLUSTER, &format!("{IN_CLUSTER}/"), Some(403));
        assert_eq!(refused.reason, "IssuerDiscoveryForbidden");
        assert!(
            refused
                .message
                .contains("rbac.unauthenticatedIssuerDiscovery")
        );
        let eks = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC";
        assert!(
            judge(eks, eks, Some(401)).ok,
            "an external issuer publishes its own keys"
        );
        let wrong = judge(IN_CLUSTER, eks, None);
        assert_eq!(wrong.reason, "IssuerMismatch");
        assert!(wrong.message.contains(eks));
    }

    #[test]
    fn in_cluster_issuers_are_recognised() {
        for i in [
            IN_CLUSTER,
            "https://kubernetes.default.svc",
            "https://kubernetes.default.svc:443/",
        ] {
            assert!(served_by_api_server(i), "{i}");
        }
        assert!(!served_by_api_server(
            "https://container.googleapis.com/v1/projects/p"
        ));
    }
}
