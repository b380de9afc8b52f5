//! The email sink URL W&B reads (`GORILLA_EMAIL_SINK`), composed from
//! `spec.wandb.notifications.email.smtp`: `smtp://user:pass@host:port`, the credentials
//! percent-encoded like every other connection URL.

use super::{ConnInputs, UrlError, host_port, userinfo};

/// The SMTP submission port, used when the port key holds an empty value.
pub const SMTP_DEFAULT_PORT: i32 = 587;

/// `smtp://user:pass@host:port` (`smtp://host:port` when neither user nor password is set).
pub fn smtp_url(i: &ConnInputs) -> Result<String, UrlError> {
    let (host, port) = host_port(i, &i.port, SMTP_DEFAULT_PORT)?;
    Ok(format!(
        "smtp://{}{host}:{port}",
        userinfo(super::non_empty(&i.user), super::non_empty(&i.password))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(fields: &[(&str, &str)]) -> ConnInputs {
        let mut i = ConnInputs::new("default");
        for (f, v) in fields {
            assert!(i.set(f, v), "{f}");
        }
        i
    }

    #[test]
    fn credentials_are_percent_encoded() {
        let i = inputs(&[
            ("host", "smtp.example.com"),
            ("port", "465"),
            ("username", "mailer@example.com"),
            ("password", "p@ss:w/rd?#&é"),
        ]);
        assert_eq!(
            smtp_url(&i).unwrap(),
            "smtp://mailer%40example.com:p%40ss%3Aw%2Frd%3F%23%26%C3%A9@smtp.example.com:465"
        );
    }

    #[test]
    fn plain_values_are_kept_and_an_empty_port_is_587() {
        let i = inputs(&[
            ("host", "mail"),
            ("port", ""),
            ("user", "u"),
            ("password", "p"),
        ]);
        assert_eq!(smtp_url(&i).unwrap(), "smtp://u:p@mail:587");
        let anonymous = inputs(&[("host", "relay"), ("port", "25")]);
        assert_eq!(smtp_url(&anonymous).unwrap(), "smtp://relay:25");
    }

    #[test]
    fn a_bad_host_or_port_is_named_without_its_value() {
        let missing = inputs(&[("port", "25"), ("password", "secret-pw")]);
        assert_eq!(smtp_url(&missing), Err(UrlError::Missing("host")));
        let bad_port = inputs(&[
            ("host", "mail"),
            ("port", "smtp"),
            ("password", "secret-pw"),
        ]);
        let e = smtp_url(&bad_port).unwrap_err().to_string();
        assert!(e.starts_with("port:"), "{e}");
        let bad_host = inputs(&[("host", "smtp://mail"), ("port", "25")]);
        let e = smtp_url(&bad_host).unwrap_err().to_string();
        assert!(e.starts_with("host:") && !e.contains("smtp://mail"), "{e}");
    }
}
