//! A failed request as a [`Failure`]: who can fix it, the reason, and the API server's message
//! in plain words (never kube's debug dump of the response).

use wandb_api::Reason;

use super::status::{Failure, FailureKind};

/// The reason of an optimistic-concurrency conflict: retried, never a condition.
pub const CONFLICT: &str = "Conflict";

impl Failure {
    /// `doing` says what the request was for, e.g. `writing Deployment w-api`.
    pub fn from_kube(doing: &str, e: &kube::Error) -> Failure {
        let message = format!("{doing}: {}", describe(e));
        let (kind, reason) = match e {
            kube::Error::Api(s) => match s.code {
                // Invalid (422), malformed (400), too large (413): the same write is refused
                // again until the resource or manifest changes.
                400 | 413 | 422 => (FailureKind::User, Reason::WRITE_REFUSED),
                // RBAC or a quota: fixed outside the resource, where no watch sees it, so
                // retried with backoff rather than stalled.
                401 | 403 => (FailureKind::Transient, Reason::FORBIDDEN),
                409 => (FailureKind::Transient, CONFLICT),
                _ => (FailureKind::Transient, Reason::API_UNAVAILABLE),
            },
            _ => (FailureKind::Transient, Reason::API_UNAVAILABLE),
        };
        Failure {
            kind,
            reason,
            message,
        }
    }

    /// A bug: something the operator itself got wrong.
    pub fn internal(message: impl Into<String>) -> Failure {
        Failure {
            kind: FailureKind::Internal,
            reason: Reason::INTERNAL_ERROR,
            message: message.into(),
        }
    }
}

/// What went wrong, in the API server's words where it gave some.
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => {
            format!(
                "the API server answered {} ({}): {}",
                s.code, s.reason, s.message
            )
        }
        kube::Error::Api(s) => format!("the API server answered {} ({})", s.code, s.reason),
        other => format!("the API server could not be reached: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure(message, reason)
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn refusals_need_the_user_and_outages_are_retried() {
        let invalid = api(
            422,
            "Invalid",
            "Ingress.networking.k8s.io \"w\" is invalid: spec.rules[0].http.paths[0].path: \
             Invalid value: \"api\": must be an absolute path",
        );
        let f = Failure::from_kube("writing Ingress w", &invalid);
        assert_eq!(
            (f.kind, f.reason),
            (FailureKind::User, Reason::WRITE_REFUSED)
        );
        assert!(
            f.message
                .starts_with("writing Ingress w: the API server answered 422")
        );
        assert!(f.message.contains("must be an absolute path"));
        assert!(
            !f.message.contains("Status {"),
            "no debug dump: {}",
            f.message
        );
        let too_large = api(413, "RequestEntityTooLarge", "Request entity too large");
        assert_eq!(Failure::from_kube("x", &too_large).kind, FailureKind::User);
        let unavailable = api(503, "ServiceUnavailable", "etcd leader changed");
        assert_eq!(
            Failure::from_kube("x", &unavailable).reason,
            Reason::API_UNAVAILABLE
        );
        assert_eq!(
            Failure::from_kube("x", &api(409, "Conflict", "")).reason,
            CONFLICT
        );
    }
}
