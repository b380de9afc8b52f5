//! Leader election against the local control plane.

use std::time::Duration;

use wandb_operator::leader::{LeaseConfig, release, try_acquire};

fn cfg(ns: &str, who: &str) -> LeaseConfig {
    LeaseConfig {
        duration: Duration::from_secs(2),
        renew_every: Duration::from_millis(500),
        ..LeaseConfig::new(ns, who)
    }
}

#[tokio::test]
#[ignore = "needs the local control plane (scripts/cluster.sh up)"]
async fn one_leader_at_a_time_with_release_and_expiry() {
    let ns = wandb_testkit::namespace("lease").await;
    let client = ns.client();
    let (a, b) = (cfg(ns.name(), "a"), cfg(ns.name(), "b"));

    assert!(
        try_acquire(&client, &a).await.unwrap(),
        "a creates the Lease"
    );
    assert!(
        !try_acquire(&client, &b).await.unwrap(),
        "b waits while a holds it"
    );
    assert!(try_acquire(&client, &a).await.unwrap(), "a renews");

    release(&client, &a).await;
    assert!(
        try_acquire(&client, &b).await.unwrap(),
        "b takes a released Lease at once"
    );
    assert!(!try_acquire(&client, &a).await.unwrap());

    // b stops renewing: after the Lease duration, a takes over.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        try_acquire(&client, &a).await.unwrap(),
        "a takes over an expired Lease"
    );
    assert!(!try_acquire(&client, &b).await.unwrap());
    ns.cleanup().await;
}
