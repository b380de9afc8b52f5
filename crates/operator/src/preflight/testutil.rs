//! Test servers for the preflight: a throwaway CA, TLS listeners and a fake MySQL greeting.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::ServerConfig;
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

/// A CA with a server certificate for `localhost` and `127.0.0.1`, and a client certificate.
pub struct Pki {
    pub ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: Vec<u8>,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

impl Pki {
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Distinct names, so that another test CA is an unknown issuer, not a bad signature.
        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        let n = SERIAL.fetch_add(1, Ordering::Relaxed);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("preflight test CA {n}"));
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let leaf = |names: Vec<String>| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &ca)
                .unwrap();
            (cert, key)
        };
        let (server, server_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()]);
        let (client, client_key) = leaf(vec!["wandb".into()]);
        Pki {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            server_chain: vec![server.der().clone()],
            server_key: server_key.serialize_der(),
            client_cert_pem: client.pem(),
            client_key_pem: client_key.serialize_pem(),
        }
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.server_key.clone()).into()
    }

    pub fn server_config(&self) -> Arc<ServerConfig> {
        let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(self.server_chain.clone(), self.key())
            .unwrap();
        Arc::new(config)
    }

    fn server_config_requiring_client_cert(&self) -> Arc<ServerConfig> {
        let provider = Arc::new(aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone())
            .build()
            .unwrap();
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.server_chain.clone(), self.key())
            .unwrap();
        Arc::new(config)
    }
}

/// Serves TLS on 127.0.0.1 for every connection, until the test ends.
pub async fn tls_server(config: Arc<ServerConfig>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(s).await {
                    let _ = tls.read(&mut [0u8; 1]).await;
                }
            });
        }
    });
    addr
}

/// One TLS connection that must present a client certificate of the CA; says whether it did.
pub async fn tls_server_requiring_client_cert(pki: &Pki) -> (String, oneshot::Receiver<bool>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let acceptor = TlsAcceptor::from(pki.server_config_requiring_client_cert());
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let presented = match acceptor.accept(s).await {
            Ok(tls) => tls
                .get_ref()
                .1
                .peer_certificates()
                .is_some_and(|c| !c.is_empty()),
            Err(_) => false,
        };
        let _ = tx.send(presented);
    });
    (addr, rx)
}

/// A greeting packet (sequence 0) of MySQL 8.4 with the lower capability flags `caps`.
pub fn greeting(caps: u16) -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(b"8.4.0\0");
    p.extend_from_slice(&7u32.to_le_bytes());
    p.extend_from_slice(b"abcdefgh\0");
    p.extend_from_slice(&caps.to_le_bytes());
    p.extend_from_slice(&[45, 2, 0, 0xFF, 0xC3, 21]);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
    let len = p.len() as u32;
    let mut packet = len.to_le_bytes()[..3].to_vec();
    packet.push(0);
    packet.extend(p);
    packet
}

/// Accepts one connection, writes `first` and reads the client's 36-byte answer (sent back on
/// the channel); then TLS with `tls`, or, without it, plaintext garbage.
pub async fn fake_mysql(
    first: Vec<u8>,
    tls: Option<Arc<ServerConfig>>,
) -> (String, oneshot::Receiver<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        s.write_all(&first).await.unwrap();
        let mut request = vec![0u8; 36];
        if s.read_exact(&mut request).await.is_err() {
            return;
        }
        let _ = tx.send(request);
        match tls {
            Some(config) => {
                if let Ok(mut tls) = TlsAcceptor::from(config).accept(s).await {
                    let _ = tls.read(&mut [0u8; 1]).await;
                }
            }
            None => {
                let _ = s.write_all(b"\x07\0\0\x02\0\0\0\x02\0\0\0").await;
            }
        }
    });
    (addr, rx)
}
