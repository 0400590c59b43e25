//! `scripts/broker.sh` and the harness's broker: they start a broker that answers Kafka
//! requests, and stopping leaves no process behind.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use integration_tests::broker::Storage;
use integration_tests::{TestBroker, unique_name, workspace_root};
use shared::admin::TopicAdmin;
use shared::settings::ConnectionSettings;

fn broker_sh(args: &[&str]) -> std::process::Output {
    Command::new(workspace_root().join("scripts/broker.sh"))
        .args(args)
        .output()
        .expect("broker.sh runs")
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

async fn answers(bootstrap: &str) -> bool {
    let settings = ConnectionSettings::plaintext(vec![bootstrap.to_owned()], "script-test");
    match TopicAdmin::connect(&settings, Duration::from_millis(300)).await {
        Ok(mut admin) => admin.describe_topics(&[]).await.is_ok(),
        Err(_) => false,
    }
}

#[tokio::test]
async fn start_status_stop_leaves_no_process_behind() {
    let name = unique_name("script");
    let started = broker_sh(&["start", "--name", &name]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let stdout = String::from_utf8_lossy(&started.stdout).into_owned();
    let bootstrap = stdout
        .lines()
        .find_map(|line| line.strip_prefix("BOOTSTRAP_SERVERS="))
        .expect("start prints BOOTSTRAP_SERVERS=")
        .to_owned();
    assert!(
        answers(&bootstrap).await,
        "the started broker answers Metadata"
    );

    let again = broker_sh(&["start", "--name", &name]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains(&bootstrap),
        "start is idempotent"
    );

    let status = broker_sh(&["status", "--name", &name]);
    assert_eq!(status.status.code(), Some(0));
    let status_text = String::from_utf8_lossy(&status.stdout).into_owned();
    let pid: u32 = status_text
        .split_whitespace()
        .find_map(|word| word.strip_prefix("pid="))
        .and_then(|pid| pid.parse().ok())
        .expect("status names the pid");
    assert!(process_exists(pid));

    let stopped = broker_sh(&["stop", "--name", &name]);
    assert!(stopped.status.success());
    assert!(!process_exists(pid), "the broker process is gone");
    assert!(
        !answers(&bootstrap).await,
        "nothing answers on its port any more"
    );
    assert_eq!(
        broker_sh(&["status", "--name", &name]).status.code(),
        Some(3)
    );
}

#[tokio::test]
async fn a_dropped_test_broker_stops_listening() {
    let broker = TestBroker::start(Storage::Memory);
    let bootstrap = broker.bootstrap();
    assert!(answers(&bootstrap).await);
    drop(broker);
    assert!(
        !answers(&bootstrap).await,
        "dropping the harness broker stops it"
    );
}
