//! The conversion webhook's certificates: a self-signed CA (whose PEM is the CRD's caBundle) and
//! a serving certificate it signs, kept in one Secret and rotated without an outage:
//!
//! * serving certificate near expiry (or names changed): a new one from the same CA; the
//!   caBundle does not change, so every API server keeps trusting whichever one it is offered;
//! * CA near expiry: a new CA is added to the bundle first (old + new), the serving certificate
//!   is re-issued from the new CA only after `grace` (every API server has the new bundle by
//!   then), and the old CA leaves the bundle `grace` after that (every replica serves the new
//!   certificate by then).
//!
//! [`next`] is pure (time is an argument) so each step is unit tested.

use std::collections::BTreeMap;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::OffsetDateTime;

/// When certificates are renewed.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub ca_validity: Duration,
    pub leaf_validity: Duration,
    /// Renew when less than this share of the validity remains.
    pub renew_remaining: f64,
    /// Time for every API server and replica to see a change before the next step relies on it.
    pub grace: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        Policy {
            ca_validity: Duration::from_secs(5 * 365 * DAY),
            leaf_validity: Duration::from_secs(90 * DAY),
            renew_remaining: 1.0 / 3.0,
            grace: Duration::from_secs(5 * 60),
        }
    }
}

/// Everything kept in the Secret. Times are Unix seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct CertState {
    pub ca_pem: String,
    pub ca_key_pem: String,
    pub ca_name: String,
    pub ca_not_after: i64,
    pub prev_ca_pem: Option<String>,
    /// When the bundle last gained or lost a CA.
    pub bundle_changed_at: i64,
    pub tls_pem: String,
    pub tls_key_pem: String,
    pub tls_not_after: i64,
    pub tls_issued_at: i64,
    /// `ca_name` of the CA that signed the serving certificate.
    pub tls_issuer: String,
    /// Comma-separated DNS names (and IP addresses) of the serving certificate.
    pub tls_names: String,
}

const KEYS: [&str; 12] = [
    "ca.crt",
    "ca.key",
    "ca.name",
    "ca.not-after",
    "ca.previous.crt",
    "bundle.changed-at",
    "tls.crt",
    "tls.key",
    "tls.not-after",
    "tls.issued-at",
    "tls.issuer",
    "tls.names",
];

#[derive(Debug, thiserror::Error)]
#[error("certificate generation failed: {0}")]
pub struct CertError(#[from] rcgen::Error);

impl CertState {
    /// The CRD's caBundle: the current CA, then the previous one while it is still trusted.
    pub fn bundle(&self) -> String {
        let mut b = self.ca_pem.clone();
        if let Some(p) = &self.prev_ca_pem {
            b.push_str(p);
        }
        b
    }

    pub fn to_data(&self) -> BTreeMap<String, String> {
        let mut d = BTreeMap::new();
        let vals = [
            Some(self.ca_pem.clone()),
            Some(self.ca_key_pem.clone()),
            Some(self.ca_name.clone()),
            Some(self.ca_not_after.to_string()),
            self.prev_ca_pem.clone(),
            Some(self.bundle_changed_at.to_string()),
            Some(self.tls_pem.clone()),
            Some(self.tls_key_pem.clone()),
            Some(self.tls_not_after.to_string()),
            Some(self.tls_issued_at.to_string()),
            Some(self.tls_issuer.clone()),
            Some(self.tls_names.clone()),
        ];
        for (k, v) in KEYS.iter().zip(vals) {
            if let Some(v) = v {
                d.insert((*k).to_owned(), v);
            }
        }
        d
    }

    /// None when a key is missing or malformed (the caller then starts over).
    pub fn from_data(d: &BTreeMap<String, String>) -> Option<Self> {
        let s = |k: &str| d.get(k).cloned();
        let n = |k: &str| d.get(k)?.parse::<i64>().ok();
        Some(CertState {
            ca_pem: s("ca.crt")?,
            ca_key_pem: s("ca.key")?,
            ca_name: s("ca.name")?,
            ca_not_after: n("ca.not-after")?,
            prev_ca_pem: s("ca.previous.crt"),
            bundle_changed_at: n("bundle.changed-at")?,
            tls_pem: s("tls.crt")?,
            tls_key_pem: s("tls.key")?,
            tls_not_after: n("tls.not-after")?,
            tls_issued_at: n("tls.issued-at")?,
            tls_issuer: s("tls.issuer")?,
            tls_names: s("tls.names")?,
        })
    }
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

fn ca_params(name: &str, now: i64, policy: &Policy) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    // A minute back: API servers with a slightly late clock still accept it.
    p.not_before = at(now - 60);
    p.not_after = at(now + secs(policy.ca_validity));
    p
}

/// A new CA, named uniquely (the name ties serving certificates to the CA that signed them).
fn new_ca(now: i64, policy: &Policy) -> Result<(String, String, String, i64), CertError> {
    let key = KeyPair::generate()?;
    let name = format!("wandb-operator webhook CA {now}-{}", rand::random::<u32>());
    let params = ca_params(&name, now, policy);
    let cert = params.self_signed(&key)?;
    Ok((
        cert.pem(),
        key.serialize_pem(),
        name,
        now + secs(policy.ca_validity),
    ))
}

/// A serving certificate for `names` signed by the state's current CA.
fn issue_leaf(
    state: &mut CertState,
    names: &str,
    now: i64,
    policy: &Policy,
) -> Result<(), CertError> {
    let ca_key = KeyPair::from_pem(&state.ca_key_pem)?;
    // Same name and key as the CA certificate: the issuer and key identifier match it.
    let issuer = Issuer::new(ca_params(&state.ca_name, now, policy), ca_key);
    let list: Vec<String> = names.split(',').map(str::to_owned).collect();
    let mut p = CertificateParams::new(list)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "wandb-operator webhook");
    p.distinguished_name = dn;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.not_before = at(now - 60);
    let not_after = (now + secs(policy.leaf_validity)).min(state.ca_not_after);
    p.not_after = at(not_after);
    let key = KeyPair::generate()?;
    let cert = p.signed_by(&key, &issuer)?;
    state.tls_pem = cert.pem();
    state.tls_key_pem = key.serialize_pem();
    state.tls_not_after = not_after;
    state.tls_issued_at = now;
    state.tls_issuer = state.ca_name.clone();
    state.tls_names = names.to_owned();
    Ok(())
}

/// A CA and a serving certificate from scratch.
pub fn fresh(names: &str, now: i64, policy: &Policy) -> Result<CertState, CertError> {
    let (ca_pem, ca_key_pem, ca_name, ca_not_after) = new_ca(now, policy)?;
    let mut s = CertState {
        ca_pem,
        ca_key_pem,
        ca_name,
        ca_not_after,
        prev_ca_pem: None,
        bundle_changed_at: now,
        tls_pem: String::new(),
        tls_key_pem: String::new(),
        tls_not_after: 0,
        tls_issued_at: 0,
        tls_issuer: String::new(),
        tls_names: String::new(),
    };
    issue_leaf(&mut s, names, now, policy)?;
    Ok(s)
}

fn expiring(not_after: i64, validity: Duration, now: i64, policy: &Policy) -> bool {
    let left = not_after - now;
    (left as f64) < validity.as_secs_f64() * policy.renew_remaining
}

/// The next state, or None when nothing is due. One step per call.
pub fn next(
    state: &CertState,
    names: &str,
    now: i64,
    policy: &Policy,
) -> Result<Option<CertState>, CertError> {
    let grace = secs(policy.grace);
    let mut s = state.clone();
    let leaf_from_current = s.tls_issuer == s.ca_name;
    // 1. A new CA joins the bundle (the old one stays, still signing the served certificate).
    if s.prev_ca_pem.is_none() && expiring(s.ca_not_after, policy.ca_validity, now, policy) {
        let (pem, key, name, not_after) = new_ca(now, policy)?;
        s.prev_ca_pem = Some(std::mem::replace(&mut s.ca_pem, pem));
        s.ca_key_pem = key;
        s.ca_name = name;
        s.ca_not_after = not_after;
        s.bundle_changed_at = now;
        return Ok(Some(s));
    }
    // 2. Serve a certificate of the new CA once every API server trusts it.
    if !leaf_from_current {
        if now - s.bundle_changed_at < grace {
            return Ok(None);
        }
        issue_leaf(&mut s, names, now, policy)?;
        return Ok(Some(s));
    }
    // 3. The old CA leaves once every replica serves the new certificate.
    if s.prev_ca_pem.is_some() && now - s.tls_issued_at >= grace {
        s.prev_ca_pem = None;
        s.bundle_changed_at = now;
        return Ok(Some(s));
    }
    // 4. Serving certificate renewal (same CA: no bundle change).
    if s.tls_names != names || expiring(s.tls_not_after, policy.leaf_validity, now, policy) {
        issue_leaf(&mut s, names, now, policy)?;
        return Ok(Some(s));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &str = "wandb-operator-webhook.ops.svc,127.0.0.1";

    fn policy() -> Policy {
        Policy {
            ca_validity: Duration::from_secs(3000),
            leaf_validity: Duration::from_secs(300),
            renew_remaining: 1.0 / 3.0,
            grace: Duration::from_secs(10),
        }
    }

    #[test]
    fn fresh_state_round_trips_through_secret_data() {
        let s = fresh(NAMES, 1_000_000, &policy()).unwrap();
        assert!(s.ca_pem.contains("BEGIN CERTIFICATE") && s.tls_key_pem.contains("PRIVATE KEY"));
        assert_eq!(s.tls_issuer, s.ca_name);
        assert_eq!(CertState::from_data(&s.to_data()), Some(s.clone()));
        assert_eq!(s.bundle(), s.ca_pem);
        assert_eq!(next(&s, NAMES, 1_000_001, &policy()).unwrap(), None);
    }

    #[test]
    fn leaf_renews_from_the_same_ca_when_a_third_is_left() {
        let p = policy();
        let s = fresh(NAMES, 0, &p).unwrap();
        assert_eq!(next(&s, NAMES, 199, &p).unwrap(), None);
        let r = next(&s, NAMES, 201, &p).unwrap().expect("renewed");
        assert_ne!(r.tls_pem, s.tls_pem);
        assert_eq!(r.bundle(), s.bundle(), "the caBundle does not change");
        // New names (a renamed Service) are a reason too.
        let r = next(&s, "other.svc", 1, &p).unwrap().expect("reissued");
        assert_eq!(r.tls_names, "other.svc");
    }

    #[test]
    fn ca_rotation_overlaps_in_three_steps() {
        let p = policy();
        let s = fresh(NAMES, 0, &p).unwrap();
        let t = 2001; // a third of 3000 left
        let s1 = next(&s, NAMES, t, &p).unwrap().expect("new CA");
        assert_eq!(
            s1.bundle(),
            format!("{}{}", s1.ca_pem, s.ca_pem),
            "new + old"
        );
        assert_eq!(
            s1.tls_pem, s.tls_pem,
            "still serving the old CA's certificate"
        );
        assert_eq!(
            next(&s1, NAMES, t + 5, &p).unwrap(),
            None,
            "waits for the grace"
        );
        let s2 = next(&s1, NAMES, t + 10, &p)
            .unwrap()
            .expect("leaf from the new CA");
        assert_eq!(s2.tls_issuer, s2.ca_name);
        assert_eq!(s2.bundle(), s1.bundle(), "both CAs still trusted");
        assert_eq!(next(&s2, NAMES, t + 15, &p).unwrap(), None);
        let s3 = next(&s2, NAMES, t + 20, &p)
            .unwrap()
            .expect("old CA dropped");
        assert_eq!(s3.bundle(), s3.ca_pem);
        assert_eq!(next(&s3, NAMES, t + 21, &p).unwrap(), None);
    }
}
