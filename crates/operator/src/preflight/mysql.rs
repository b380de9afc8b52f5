//! MySQL's in-protocol TLS upgrade: the server speaks first (its greeting says whether it offers
//! TLS), the client answers with an SSLRequest instead of its login, and the TLS handshake then
//! runs on the same connection. No credentials are sent.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const CLIENT_PROTOCOL_41: u32 = 0x0200;
const CLIENT_SSL: u32 = 0x0800;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
/// utf8mb4_general_ci, what the Go driver announces.
const CHARSET_UTF8MB4: u8 = 45;
const MAX_PACKET: u32 = 16 * 1024 * 1024;
/// A greeting is well under 1 KiB; anything larger is not one.
const MAX_GREETING: usize = 64 * 1024;

/// Reads the server greeting and, when it offers TLS, sends the SSLRequest: `Ok(true)` means
/// the TLS handshake may start on `stream`; `Ok(false)` that the server does not offer TLS.
pub(super) async fn request_tls<S>(stream: &mut S) -> Result<bool, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut header = [0u8; 4];
    stream
        .read_exact(&mut header)
        .await
        .map_err(|e| read_error(&e))?;
    let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    if len == 0 || len > MAX_GREETING {
        return Err(format!(
            "not a MySQL server (its first packet claims {len} bytes)"
        ));
    }
    let mut payload = vec![0u8; len];
    stream
        .read_exact(&mut payload)
        .await
        .map_err(|e| read_error(&e))?;
    if !offers_tls(&payload)? {
        return Ok(false);
    }
    stream
        .write_all(&ssl_request(header[3].wrapping_add(1)))
        .await
        .map_err(|e| format!("sending the SSLRequest failed: {e}"))?;
    stream
        .flush()
        .await
        .map_err(|e| format!("sending the SSLRequest failed: {e}"))?;
    Ok(true)
}

fn read_error(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        "the server closed the connection before its MySQL greeting".into()
    } else {
        format!("reading the MySQL greeting failed: {e}")
    }
}

/// Whether the greeting advertises CLIENT_SSL; an error packet or a malformed greeting is an
/// error naming what the server said.
fn offers_tls(payload: &[u8]) -> Result<bool, String> {
    match payload.first() {
        Some(0xFF) => Err(error_packet(payload)),
        Some(10) => {
            let malformed = || "malformed MySQL greeting".to_string();
            let version_end = payload[1..]
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(malformed)?;
            // connection id (4), auth data part 1 (8), filler (1), then the lower flags.
            let flags_at = 1 + version_end + 1 + 4 + 8 + 1;
            let flags = payload.get(flags_at..flags_at + 2).ok_or_else(malformed)?;
            Ok(u32::from(u16::from_le_bytes([flags[0], flags[1]])) & CLIENT_SSL != 0)
        }
        Some(v) => Err(format!(
            "not a MySQL server (greeting protocol version {v}, expected 10)"
        )),
        None => Err("malformed MySQL greeting".into()),
    }
}

/// `0xFF`, 2-byte code, optional `#` and 5-character SQL state, then the message.
fn error_packet(payload: &[u8]) -> String {
    let code = payload
        .get(1..3)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .unwrap_or_default();
    let mut msg = payload.get(3..).unwrap_or_default();
    if msg.first() == Some(&b'#') && msg.len() >= 6 {
        msg = &msg[6..];
    }
    format!(
        "the MySQL server refused the connection: {} (error {code})",
        String::from_utf8_lossy(msg).trim()
    )
}

fn ssl_request(sequence: u8) -> [u8; 36] {
    let mut p = [0u8; 36];
    p[..4].copy_from_slice(&[32, 0, 0, sequence]);
    let caps = CLIENT_SSL | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION;
    p[4..8].copy_from_slice(&caps.to_le_bytes());
    p[8..12].copy_from_slice(&MAX_PACKET.to_le_bytes());
    p[12] = CHARSET_UTF8MB4;
    p
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{Pki, fake_mysql, greeting};
    use super::super::{Certs, MysqlTls, Target, Tls, check};
    use super::*;

    fn mysql(addr: &str, mode: MysqlTls) -> Target {
        Target {
            addr: addr.to_string(),
            server_name: "localhost".into(),
            tls: Tls::Mysql(mode),
        }
    }

    fn ca(pki: &Pki) -> Certs {
        Certs {
            ca: Some(pki.ca_pem.clone()),
            ..Certs::default()
        }
    }

    #[test]
    fn the_ssl_request_asks_for_tls_with_protocol_41() {
        let p = ssl_request(1);
        assert_eq!(&p[..4], &[32, 0, 0, 1]);
        let caps = u32::from_le_bytes([p[4], p[5], p[6], p[7]]);
        assert_eq!(caps & 0x8a00, 0x8a00);
        assert_eq!(u32::from_le_bytes([p[8], p[9], p[10], p[11]]), 1 << 24);
        assert_eq!(p[12], 45);
        assert!(p[13..].iter().all(|b| *b == 0));
    }

    #[test]
    fn greetings_are_parsed() {
        assert_eq!(offers_tls(&greeting(0xFFFF)[4..]), Ok(true));
        assert_eq!(offers_tls(&greeting(0xF7FF)[4..]), Ok(false));
        assert_eq!(
            offers_tls(&greeting(0xFFFF)[4..20]),
            Err("malformed MySQL greeting".into())
        );
        assert!(
            offers_tls(b"HTTP/1.1 400")
                .unwrap_err()
                .contains("protocol version 72")
        );
        let mut err = vec![0xFF, 0x6a, 0x04];
        err.extend_from_slice(b"Host '10.0.0.1' is not allowed to connect to this MySQL server");
        assert_eq!(
            offers_tls(&err).unwrap_err(),
            "the MySQL server refused the connection: Host '10.0.0.1' is not allowed to connect \
             to this MySQL server (error 1130)"
        );
        let with_state = [&[0xFF, 0x10, 0x04][..], b"#08004Too many connections"].concat();
        assert_eq!(
            offers_tls(&with_state).unwrap_err(),
            "the MySQL server refused the connection: Too many connections (error 1040)"
        );
    }

    #[tokio::test]
    async fn tls_is_negotiated_inside_the_protocol() {
        let pki = Pki::new();
        let (addr, request) = fake_mysql(greeting(0xFFFF), Some(pki.server_config())).await;
        check(&mysql(&addr, MysqlTls::Verify), &ca(&pki))
            .await
            .unwrap();
        let request = request.await.unwrap();
        assert_eq!(
            request,
            ssl_request(1),
            "the 36-byte SSLRequest, sequence 1"
        );

        // Verified: an unknown CA fails; skip-verify and preferred accept it.
        let (addr, _) = fake_mysql(greeting(0xFFFF), Some(pki.server_config())).await;
        let e = check(&mysql(&addr, MysqlTls::Verify), &ca(&Pki::new()))
            .await
            .unwrap_err();
        assert!(
            e.starts_with(&format!("{addr}: TLS handshake failed: ")),
            "{e}"
        );
        assert!(e.contains("UnknownIssuer"), "{e}");
        for mode in [MysqlTls::SkipVerify, MysqlTls::Preferred] {
            let (addr, _) = fake_mysql(greeting(0xFFFF), Some(pki.server_config())).await;
            check(&mysql(&addr, mode), &Certs::default()).await.unwrap();
        }
    }

    #[tokio::test]
    async fn skip_verify_still_reports_a_server_that_does_not_speak_tls() {
        let (addr, _) = fake_mysql(greeting(0xFFFF), None).await;
        let e = check(&mysql(&addr, MysqlTls::SkipVerify), &Certs::default())
            .await
            .unwrap_err();
        assert!(
            e.starts_with(&format!("{addr}: TLS handshake failed: ")),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_server_without_tls_is_reported_unless_tls_is_only_preferred() {
        let no_ssl = greeting(0xF7FF); // all but CLIENT_SSL
        let (addr, _) = fake_mysql(no_ssl.clone(), None).await;
        let e = check(&mysql(&addr, MysqlTls::Verify), &Certs::default())
            .await
            .unwrap_err();
        assert_eq!(e, format!("{addr}: the MySQL server does not offer TLS"));
        let (addr, _) = fake_mysql(no_ssl, None).await;
        check(&mysql(&addr, MysqlTls::Preferred), &Certs::default())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_error_packet_is_reported_with_its_message() {
        let mut packet = vec![0, 0, 0, 0, 0xFF, 0x10, 0x04];
        packet.extend_from_slice(b"Too many connections");
        packet[0] = (packet.len() - 4) as u8;
        let (addr, _) = fake_mysql(packet, None).await;
        let e = check(&mysql(&addr, MysqlTls::Verify), &Certs::default())
            .await
            .unwrap_err();
        assert_eq!(
            e,
            format!(
                "{addr}: the MySQL server refused the connection: Too many connections (error 1040)"
            )
        );
    }
}
