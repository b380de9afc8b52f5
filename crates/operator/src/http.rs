//! A minimal HTTP endpoint for probes and metrics (`/livez`, `/readyz`, `/metrics`), on tokio
//! alone: one request per connection, no keep-alive, which is all kubelet and Prometheus need.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::controller::Context;

/// Parses `:8080`, `0.0.0.0:8080` or `[::]:8080`; `0` or empty disables the endpoint.
pub fn parse_bind(addr: &str) -> Result<Option<SocketAddr>, String> {
    let addr = addr.trim();
    if addr.is_empty() || addr == "0" {
        return Ok(None);
    }
    let full = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    full.parse()
        .map(Some)
        .map_err(|e| format!("bad bind address {addr:?}: {e}"))
}

/// The response for a request path: (status line, content type, body).
pub fn respond(path: &str, ctx: &Context) -> (&'static str, &'static str, String) {
    match path {
        "/livez" | "/healthz" => ("200 OK", "text/plain", "ok\n".into()),
        "/readyz" if ctx.is_ready() => ("200 OK", "text/plain", "ok\n".into()),
        "/readyz" => (
            "503 Service Unavailable",
            "text/plain",
            "controller not started\n".into(),
        ),
        "/metrics" => ("200 OK", "text/plain; version=0.0.4", ctx.metrics_text()),
        _ => ("404 Not Found", "text/plain", "not found\n".into()),
    }
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, ctx: Arc<Context>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let n = match tokio::time::timeout(
                std::time::Duration::from_secs(5),
                stream.read(&mut buf),
            )
            .await
            {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("/")
                .split('?')
                .next()
                .unwrap_or("/")
                .to_string();
            let (status, ctype, body) = respond(&path, &ctx);
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(resp.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_addresses() {
        assert_eq!(
            parse_bind(":8080").unwrap(),
            Some("0.0.0.0:8080".parse().unwrap())
        );
        assert_eq!(
            parse_bind("127.0.0.1:9").unwrap(),
            Some("127.0.0.1:9".parse().unwrap())
        );
        assert_eq!(parse_bind("0").unwrap(), None);
        assert!(parse_bind("nope").is_err());
    }
}
