//! Every request the operator sends to the API server passes through here: it is counted by verb
//! and resource (what the audit log would show, without needing one), and carries the
//! User-Agent `wandb-operator/<version>` so that audit logs and API priority rules can tell the
//! operator's requests apart.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::{Method, Request, Response, Uri};
use kube::client::Body;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("wandb-operator/", env!("CARGO_PKG_VERSION"));

/// Labels of `wandb_operator_api_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: &'static str,
    pub resource: String,
}

/// Request counts by `(verb, resource)`, e.g. `("get", "deployments")`, kept for tests and
/// benchmarks and exported as a Prometheus counter family.
#[derive(Default, Debug)]
pub struct ApiRequests {
    counts: Mutex<BTreeMap<(&'static str, String), u64>>,
    pub(crate) family: Family<RequestLabels, Counter>,
    /// The writes among them (create, update, patch, delete): every write the process makes,
    /// including events, finalizer and status patches, purge deletes and lease renewals, so the
    /// count equals what the API server's audit log shows.
    pub(crate) writes: Family<RequestLabels, Counter>,
}

impl ApiRequests {
    fn record(&self, method: &Method, uri: &Uri) {
        let (verb, resource) = classify(method, uri);
        let labels = RequestLabels {
            verb,
            resource: resource.clone(),
        };
        self.family.get_or_create(&labels).inc();
        if matches!(
            verb,
            "create" | "update" | "patch" | "delete" | "deletecollection"
        ) {
            self.writes.get_or_create(&labels).inc();
        }
        *self
            .counts
            .lock()
            .expect("not poisoned")
            .entry((verb, resource))
            .or_default() += 1;
    }

    #[cfg(test)]
    pub(crate) fn record_for_test(&self, method: &Method, uri: &Uri) {
        self.record(method, uri);
    }

    /// A copy of the counts so far.
    pub fn snapshot(&self) -> BTreeMap<(&'static str, String), u64> {
        self.counts.lock().expect("not poisoned").clone()
    }

    /// Requests made since `before` (a [`Self::snapshot`]), by verb and resource; zero counts
    /// left out.
    pub fn since(
        &self,
        before: &BTreeMap<(&'static str, String), u64>,
    ) -> BTreeMap<(&'static str, String), u64> {
        self.snapshot()
            .into_iter()
            .filter_map(|(k, n)| {
                let delta = n - before.get(&k).copied().unwrap_or(0);
                (delta > 0).then_some((k, delta))
            })
            .collect()
    }

    /// [`Self::since`] summed by verb (`get`, `list`, `patch`...).
    pub fn by_verb_since(
        &self,
        before: &BTreeMap<(&'static str, String), u64>,
    ) -> BTreeMap<&'static str, u64> {
        let mut out = BTreeMap::new();
        for ((verb, _), n) in self.since(before) {
            *out.entry(verb).or_default() += n;
        }
        out
    }
}

/// The audit log's verb and resource of a request: `GET` of a collection is `list` (or `watch`
/// with `watch=true`), of a named object `get`; the resource is the plural after the namespace
/// (or after the group version), with a subresource as `plural/sub`.
pub fn classify(method: &Method, uri: &Uri) -> (&'static str, String) {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    // /api/v1/... or /apis/group/version/...
    let rest = match segments.first() {
        Some(&"api") => segments.get(2..),
        Some(&"apis") => segments.get(3..),
        _ => None,
    }
    .unwrap_or_default();
    let rest = match rest {
        ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    let resource = match rest {
        [] => uri.path().to_string(),
        [plural] | [plural, _] => (*plural).to_string(),
        [plural, _, sub, ..] => format!("{plural}/{sub}"),
    };
    let named = rest.len() >= 2;
    let watch = uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"));
    let verb = match *method {
        Method::GET if watch => "watch",
        Method::GET if named => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "other",
    };
    (verb, resource)
}

/// A client whose requests are counted in `counts` and carry [`USER_AGENT`].
pub fn counted(client: kube::Client, counts: Arc<ApiRequests>) -> kube::Client {
    let namespace = client.default_namespace().to_string();
    kube::Client::new(
        Counted {
            inner: client,
            counts,
        },
        namespace,
    )
}

#[derive(Clone)]
struct Counted {
    inner: kube::Client,
    counts: Arc<ApiRequests>,
}

type ResponseFuture =
    Pin<Box<dyn std::future::Future<Output = Result<Response<Body>, kube::Error>> + Send>>;

impl tower::Service<Request<Body>> for Counted {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        self.counts.record(request.method(), request.uri());
        request.headers_mut().insert(
            http::header::USER_AGENT,
            http::HeaderValue::from_static(USER_AGENT),
        );
        let inner = self.inner.clone();
        Box::pin(async move { inner.send(request).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(method: Method, uri: &str) -> (&'static str, String) {
        classify(&method, &uri.parse().unwrap())
    }

    #[test]
    fn requests_are_classified_as_the_audit_log_does() {
        assert_eq!(
            c(Method::GET, "/apis/apps/v1/namespaces/n/deployments/w-app"),
            ("get", "deployments".into())
        );
        assert_eq!(
            c(
                Method::GET,
                "/api/v1/namespaces/n/secrets?labelSelector=a%3Db"
            ),
            ("list", "secrets".into())
        );
        assert_eq!(
            c(Method::GET, "/api/v1/secrets?watch=true&resourceVersion=1"),
            ("watch", "secrets".into())
        );
        assert_eq!(
            c(
                Method::PATCH,
                "/apis/apps.wandb.com/v2/namespaces/n/weightsandbiases/w/status?fieldManager=x"
            ),
            ("patch", "weightsandbiases/status".into())
        );
        assert_eq!(
            c(Method::POST, "/api/v1/namespaces/n/secrets"),
            ("create", "secrets".into())
        );
        assert_eq!(
            c(Method::DELETE, "/apis/batch/v1/namespaces/n/jobs/j"),
            ("delete", "jobs".into())
        );
        assert_eq!(
            c(Method::GET, "/apis/gateway.networking.k8s.io/v1"),
            ("list", "/apis/gateway.networking.k8s.io/v1".into())
        );
    }
}
