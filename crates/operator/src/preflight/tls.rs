//! The client side of the TLS check: trust from the user's CA or the platform roots, the
//! optional client certificate, and a handshake whose failure reads as a cause.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::Certs;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(aws_lc_rs::default_provider())
}

/// The client configuration for `certs`; `verify: false` accepts any server certificate (MySQL
/// `skip-verify`/`preferred`) but still checks the handshake's signatures. Errors name the
/// Secret field at fault.
pub(super) fn client_config(certs: &Certs, verify: bool) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let builder = if verify {
        builder.with_root_certificates(roots(certs.ca.as_deref())?)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
    };
    let config = match (certs.cert.as_deref(), certs.key.as_deref()) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(client_chain(cert)?, client_key(key)?)
            .map_err(|e| format!("sslCert and sslKey cannot be used together: {e}"))?,
        (Some(_), None) => return Err("sslCert is given without sslKey".into()),
        (None, Some(_)) => return Err("sslKey is given without sslCert".into()),
    };
    Ok(Arc::new(config))
}

/// Describes a PEM error without quoting the input, which may be a private key.
fn pem_problem(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a PEM section is not valid base64",
        pem::Error::SectionTooLarge => "a PEM section is too large",
        _ => "it cannot be read as PEM",
    }
}

fn certificates(field: &str, text: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "{field} is not a valid PEM certificate: {}",
                pem_problem(&e)
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{field} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(certs)
}

fn roots(ca: Option<&str>) -> Result<Arc<RootCertStore>, String> {
    let Some(ca) = ca else {
        return Ok(platform_roots());
    };
    let mut store = RootCertStore::empty();
    for cert in certificates("sslCa", ca)? {
        store
            .add(cert)
            .map_err(|e| format!("sslCa holds a certificate that cannot be used: {e}"))?;
    }
    Ok(Arc::new(store))
}

/// Read once per process: the platform store changes with the image, not at run time.
fn platform_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            if !found.errors.is_empty() {
                tracing::warn!(errors = ?found.errors, "some platform CA certificates could not be read");
            }
            let mut store = RootCertStore::empty();
            store.add_parsable_certificates(found.certs);
            Arc::new(store)
        })
        .clone()
}

fn client_chain(text: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    certificates("sslCert", text)
}

fn client_key(text: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(|e| match e {
        pem::Error::NoItemsFound => {
            "sslKey holds no unencrypted PEM private key (PKCS#8, PKCS#1 or SEC1)".to_string()
        }
        e => format!("sslKey is not a valid PEM private key: {}", pem_problem(&e)),
    })
}

/// Completes a TLS handshake over `stream` with `server_name` as SNI and verified name.
pub(super) async fn handshake(
    config: Arc<ClientConfig>,
    server_name: &str,
    stream: TcpStream,
) -> Result<(), String> {
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|_| format!("{server_name:?} is not a valid TLS server name"))?;
    TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map(drop)
        .map_err(|e| format!("TLS handshake failed: {}", cause(&e)))
}

fn cause(e: &std::io::Error) -> String {
    let hint = " (does the port speak TLS?)";
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(r @ rustls::Error::InvalidMessage(_)) => format!("{r}{hint}"),
        Some(r) => r.to_string(),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            format!("the server closed the connection{hint}")
        }
        None if e.kind() == std::io::ErrorKind::ConnectionReset => format!("{e}{hint}"),
        None => e.to_string(),
    }
}

/// `skip-verify`: any certificate is accepted, but the handshake signatures are still checked
/// so that a broken server is reported.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{Pki, tls_server, tls_server_requiring_client_cert};
    use std::time::Duration;

    use super::super::{Certs, TIMEOUT, Target, Tls, check};

    #[tokio::test]
    async fn malformed_pem_is_reported_by_field_without_its_content() {
        let pki = Pki::new();
        let addr = tls_server(pki.server_config()).await;
        let bad_body = "-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n";
        let truncated = "-----BEGIN CERTIFICATE-----\nMIIB\n";
        let cases = [
            (
                Some("not a certificate"),
                None,
                None,
                "sslCa holds no PEM certificate",
            ),
            (
                Some(bad_body),
                None,
                None,
                "sslCa is not a valid PEM certificate: a PEM section is not valid base64",
            ),
            (
                Some(truncated),
                None,
                None,
                "sslCa is not a valid PEM certificate: a PEM section has no END line",
            ),
            (
                None,
                Some(pki.client_cert_pem.as_str()),
                Some("SECRET-KEY-TEXT"),
                "sslKey holds no unencrypted PEM private key",
            ),
            (
                None,
                Some("junk"),
                Some(pki.client_key_pem.as_str()),
                "sslCert holds no PEM certificate",
            ),
            (
                None,
                Some(pki.client_cert_pem.as_str()),
                None,
                "sslCert is given without sslKey",
            ),
        ];
        for (ca, cert, key, want) in cases {
            let certs = Certs {
                ca: ca.map(str::to_string),
                cert: cert.map(str::to_string),
                key: key.map(str::to_string),
            };
            let e = check(&direct(&addr), &certs).await.unwrap_err();
            assert!(e.starts_with(&format!("{addr}: {want}")), "{e}");
            assert!(
                !e.contains("SECRET-KEY-TEXT") && !e.contains("PRIVATE KEY"),
                "{e}"
            );
        }
    }

    #[tokio::test]
    async fn the_client_certificate_is_presented() {
        let pki = Pki::new();
        let (addr, presented) = tls_server_requiring_client_cert(&pki).await;
        let certs = Certs {
            ca: Some(pki.ca_pem.clone()),
            cert: Some(pki.client_cert_pem.clone()),
            key: Some(pki.client_key_pem.clone()),
        };
        check(&direct(&addr), &certs).await.unwrap();
        assert!(
            presented.await.unwrap(),
            "the server saw a client certificate"
        );
    }

    fn direct(addr: &str) -> Target {
        Target {
            addr: addr.to_string(),
            server_name: "localhost".into(),
            tls: Tls::Direct,
        }
    }

    fn ca(pem: &str) -> Certs {
        Certs {
            ca: Some(pem.to_string()),
            ..Certs::default()
        }
    }

    #[tokio::test]
    async fn direct_tls_is_verified_against_the_given_ca() {
        let pki = Pki::new();
        let addr = tls_server(pki.server_config()).await;
        check(&direct(&addr), &ca(&pki.ca_pem)).await.unwrap();

        // Without the CA, the platform roots do not know the test CA.
        let e = check(&direct(&addr), &Certs::default()).await.unwrap_err();
        assert!(
            e.starts_with(&format!("{addr}: TLS handshake failed: ")),
            "{e}"
        );
        assert!(e.contains("UnknownIssuer"), "{e}");
        // Nor does another CA.
        let e = check(&direct(&addr), &ca(&Pki::new().ca_pem))
            .await
            .unwrap_err();
        assert!(e.contains("UnknownIssuer"), "{e}");
        // The certificate names localhost and 127.0.0.1, not this name.
        let mut wrong_name = direct(&addr);
        wrong_name.server_name = "db.example.com".into();
        let e = check(&wrong_name, &ca(&pki.ca_pem)).await.unwrap_err();
        assert!(e.contains("not valid for name \"db.example.com\""), "{e}");
    }

    #[tokio::test]
    async fn a_server_without_tls_fails_the_handshake() {
        for reply in [&b""[..], b"-ERR unknown command\r\n"] {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap().to_string();
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let (mut s, _) = l.accept().await.unwrap();
                let _ = s.write_all(reply).await;
            });
            let e = check(&direct(&addr), &ca(&Pki::new().ca_pem))
                .await
                .unwrap_err();
            assert!(
                e.starts_with(&format!("{addr}: TLS handshake failed: ")),
                "{e}"
            );
        }
    }

    #[tokio::test]
    async fn a_silent_server_is_reported_within_the_timeout() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let started = std::time::Instant::now();
        let e = check(&direct(&addr), &ca(&Pki::new().ca_pem))
            .await
            .unwrap_err();
        assert!(started.elapsed() < TIMEOUT + Duration::from_millis(500));
        assert!(e.contains("did not complete within 3s"), "{e}");
        drop(l);
    }
}
