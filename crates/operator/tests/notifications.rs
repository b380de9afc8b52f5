//! Email notifications on the local control plane: the SMTP settings become the email sink
//! Secret the apps read, composed from the user's Secrets by reference; the password never shows
//! in the resource, its status, the events or the operator's logs.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use wandb_api::WeightsAndBiases;
use wandb_testkit::wait_for;

use common::{TIMEOUT, create_secret, secret_data, start, wait_ready};

const PASSWORD: &str = "Sm7p/p@ss:w0rd#1";
const PASSWORD_ENCODED: &str = "Sm7p%2Fp%40ss%3Aw0rd%231";

const SMTP_W: &str = "apiVersion: apps.wandb.com/v2\nkind: WeightsAndBiases\nmetadata: {name: w}\nspec:\n  wandb:\n    hostname: http://w.local\n    version: \"0.84.0\"\n    manifestRepository: \"builtin://\"\n    notifications:\n      email:\n        smtp:\n          host: {name: smtp, key: host}\n          port: {name: smtp, key: port}\n          username: {name: smtp, key: user}\n          password: {name: smtp-password, key: password}\n";

/// Every log line of this test binary (the controller runs in-process), at debug level.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture() -> Self {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter("wandb_operator=debug,kube=debug")
            .with_writer(move || writer.clone())
            .try_init()
            .expect("the only subscriber of this test binary");
        logs
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn assert_no_password(what: &str, text: &str) {
    assert!(
        !text.contains(PASSWORD) && !text.contains(PASSWORD_ENCODED),
        "the SMTP password appears in {what}"
    );
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn smtp_settings_become_the_email_sink_secret_by_reference_only() {
    let logs = Logs::capture();
    let ns = wandb_testkit::namespace("notifications-smtp").await;
    let _pv = ns.start_volume_provisioner();
    let running = start(&ns).await;
    let wb: Api<WeightsAndBiases> = ns.api();
    let secrets: Api<Secret> = ns.api();
    create_secret(
        &secrets,
        "smtp",
        &[
            ("host", "smtp.example.com"),
            ("port", "465"),
            ("user", "mailer@example.com"),
        ],
    )
    .await;
    ns.apply_yaml(SMTP_W).await;

    // The password's Secret does not exist yet: named, nothing written, not Ready.
    let status = wait_for(
        "the missing SMTP password Secret to be named",
        TIMEOUT,
        || async {
            let status = serde_json::to_string(&wb.get("w").await?.status)?;
            Ok(status
                .contains("Secret smtp-password not found (for spec.wandb.notifications.email.smtp password)")
                .then_some(status))
        },
    )
    .await;
    assert!(status.contains("w-email-sink"), "{status}");
    assert!(secrets.get_opt("w-email-sink").await.unwrap().is_none());
    let st = wb.get("w").await.unwrap().status.unwrap();
    assert_eq!(
        st.email_sink, None,
        "no sink is reported before it is written"
    );
    let ready = common::condition(&wb, "w", "Ready").await;
    assert_ne!(ready.map(|(s, _)| s).as_deref(), Some("True"));

    // Created: acted on at once (the Secret is watched), the sink is written, the apps start.
    let t0 = std::time::Instant::now();
    create_secret(&secrets, "smtp-password", &[("password", PASSWORD)]).await;
    let sink = wait_for("the email sink Secret", TIMEOUT, || async {
        Ok(secrets.get_opt("w-email-sink").await?)
    })
    .await;
    eprintln!(
        "the email sink was written {:?} after its missing Secret was created",
        t0.elapsed()
    );
    let data = secret_data(&sink);
    assert_eq!(data.keys().collect::<Vec<_>>(), ["sink"]);
    assert_eq!(
        data["sink"],
        format!("smtp://mailer%40example.com:{PASSWORD_ENCODED}@smtp.example.com:465")
    );
    wait_ready(&wb, "w").await;
    let st = wb.get("w").await.unwrap().status.unwrap();
    let reported = st.email_sink.expect("status.emailSink");
    assert_eq!(
        (reported.name.as_str(), reported.key.as_str()),
        ("w-email-sink", "sink")
    );

    // The apps read it by reference (GORILLA_EMAIL_SINK from status.emailSink in the manifest).
    let deployments: Api<Deployment> = ns.api();
    let all = serde_json::to_string(&deployments.list(&Default::default()).await.unwrap()).unwrap();
    assert!(
        all.contains("\"w-email-sink\""),
        "a Deployment reads the sink"
    );
    assert_no_password("the Deployments", &all);

    // Nowhere else: the resource with its status, the events of the namespace, the logs.
    let cr = serde_json::to_string(&wb.get("w").await.unwrap()).unwrap();
    assert_no_password("the resource or its status", &cr);
    let events: Api<k8s_openapi::api::events::v1::Event> = ns.api();
    let events = serde_json::to_string(&events.list(&Default::default()).await.unwrap()).unwrap();
    assert_no_password("the events", &events);
    let log = logs.text();
    assert!(log.contains("wandb_operator"), "the logs were captured");
    assert_no_password("the operator's logs", &log);

    // SMTP taken out of the resource: the sink Secret and its status go.
    wb.patch(
        "w",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(serde_json::json!({"spec": {"wandb": {"notifications": null}}})),
    )
    .await
    .unwrap();
    wait_for(
        "the email sink Secret and status to go",
        TIMEOUT,
        || async {
            let gone = secrets.get_opt("w-email-sink").await?.is_none();
            let st = wb.get("w").await?.status.unwrap_or_default();
            Ok((gone && st.email_sink.is_none()).then_some(()))
        },
    )
    .await;
    running.finish(ns).await;
}
