//! SIGTERM and SIGINT become the shutdown cancellation. This binary holds a single test because
//! the signal goes to the whole test process.

use std::process::Command;
use std::time::Duration;

use shared::shutdown::Shutdown;

fn signal_self(signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(std::process::id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[tokio::test]
async fn sigterm_cancels_and_the_process_keeps_running_to_finish_its_work() {
    let shutdown = Shutdown::on_signals().expect("signal handlers install");
    let observer = shutdown.clone();
    assert!(!observer.is_triggered());

    signal_self("TERM");
    tokio::time::timeout(Duration::from_secs(10), observer.cancelled())
        .await
        .expect("the cancellation fires after SIGTERM");
    assert!(
        shutdown.is_triggered(),
        "every clone sees the same cancellation"
    );
}
