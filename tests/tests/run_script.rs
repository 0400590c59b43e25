//! `scripts/run.sh`, the README's first command: it brings up the broker and the three
//! services, orders reach the dashboard's metrics, and Ctrl+C (SIGINT) stops everything it
//! started, leaving no process and no listening port behind. Durable storage is the default;
//! `--durable DIR` keeps the broker's SQLite database in DIR, `--memory` keeps nothing, and
//! each run says which it uses.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::broker::free_port;
use integration_tests::pipeline::{Service, analytics_metrics, service_binary};
use integration_tests::workspace_root;

const ORDERS: u64 = 2_000;
const LIMIT: Duration = Duration::from_secs(120);

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The pids run.sh reports on stderr: `started <service> (pid N, ...)` and the broker's
/// `running (pid N, ...)`.
fn started_pids(stderr: &str) -> Vec<u32> {
    stderr
        .lines()
        .filter(|line| line.contains("started ") || line.contains(" running (pid "))
        .filter_map(|line| {
            let rest = line.split("(pid ").nth(1)?;
            rest.split([',', ')']).next()?.trim().parse().ok()
        })
        .collect()
}

/// Runs run.sh with `storage_args`, waits until the dashboard has every order decided, sends
/// Ctrl+C and checks that nothing it started is left; returns run.sh's stderr.
async fn run_pipeline_then_ctrl_c(storage_args: &[&OsStr], log_path: &Path) -> String {
    let broker_port = free_port();
    let http_port = free_port();
    // The binaries `cargo test --workspace` built: run.sh must not start a cargo build of its
    // own inside this test.
    let target_dir = service_binary(Service::Producer)
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/<binary>")
        .to_path_buf();
    let mut run = Command::new(workspace_root().join("scripts/run.sh"))
        .args(["--debug", "--no-build", "--no-follow"])
        .args(storage_args)
        .args(["--mode", "burst", "--total", &ORDERS.to_string()])
        .args(["--broker-port", &broker_port.to_string()])
        .args(["--http-port", &http_port.to_string()])
        .env("CARGO_TARGET_DIR", &target_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log_path).expect("log file"))
        .spawn()
        .expect("run.sh starts");

    let started = Instant::now();
    let metrics = loop {
        if let Some(metrics) = analytics_metrics(http_port)
            && metrics["orders"]["total"] == ORDERS
            && metrics["processed_order_count"] == ORDERS
        {
            break metrics;
        }
        if let Ok(Some(status)) = run.try_wait() {
            panic!(
                "run.sh exited early ({status}):\n{}",
                std::fs::read_to_string(log_path).unwrap_or_default()
            );
        }
        assert!(
            started.elapsed() < LIMIT,
            "orders never reached the dashboard:\n{}",
            std::fs::read_to_string(log_path).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(metrics["outcomes_total"]["reserved"], ORDERS);

    let stderr = std::fs::read_to_string(log_path).expect("run.sh's log");
    let pids = started_pids(&stderr);
    assert_eq!(
        pids.len(),
        4,
        "a broker and three services started:\n{stderr}"
    );

    // Ctrl+C: a terminal sends SIGINT.
    Command::new("kill")
        .args(["-INT", &run.id().to_string()])
        .status()
        .expect("kill runs");
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = run.try_wait().expect("try_wait") {
            break status;
        }
        assert!(stopped.elapsed() < LIMIT, "run.sh did not stop on SIGINT");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.code(), Some(130), "the conventional exit for SIGINT");
    for pid in pids {
        assert!(!alive(pid), "pid {pid} is still running after Ctrl+C");
    }
    assert!(
        analytics_metrics(http_port).is_none(),
        "nothing answers on the dashboard's port"
    );
    let stderr = std::fs::read_to_string(log_path).expect("run.sh's log");
    assert!(stderr.contains("stopped"), "{stderr}");
    stderr
}

#[tokio::test]
async fn run_sh_starts_the_pipeline_on_memory_storage_and_ctrl_c_leaves_nothing_running() {
    let data = tempfile::tempdir().expect("a data folder");
    let logs = data.path().join("pipeline");
    let stderr = run_pipeline_then_ctrl_c(
        &["--memory".as_ref(), "--data".as_ref(), logs.as_os_str()],
        &data.path().join("run.stderr"),
    )
    .await;
    assert!(stderr.contains("storage: memory"), "{stderr}");
    assert!(
        !logs.join("broker").exists(),
        "memory storage writes no database:\n{stderr}"
    );
}

#[tokio::test]
async fn run_sh_durable_keeps_the_broker_database_in_its_folder() {
    let data = tempfile::tempdir().expect("a data folder");
    let folder = data.path().join("durable");
    let stderr = run_pipeline_then_ctrl_c(
        &["--durable".as_ref(), folder.as_os_str(), "--fresh".as_ref()],
        &data.path().join("run.stderr"),
    )
    .await;
    assert!(stderr.contains("storage: durable"), "{stderr}");
    let database = folder.join("broker/broker.db");
    let size = std::fs::metadata(&database).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 0,
        "{} holds the topics:\n{stderr}",
        database.display()
    );
}
