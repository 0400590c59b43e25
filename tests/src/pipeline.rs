//! The whole pipeline as real processes, for the end-to-end and chaos tests: the three service
//! binaries started against a test broker with uniquely named topics and groups, each with its
//! own log file, and the figures those tests assert on — analytics' `/metrics`, the distinct
//! orders in the dead-letter topic, and the inventory group's committed offsets against the
//! end of the order log.
//!
//! It never decides what a test expects; it only starts, signals and measures. The service
//! binaries are the ones `cargo test --workspace` builds beside the test executables.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rskafka::client::Client;
use rskafka::client::partition::{OffsetAt, UnknownTopicHandling};
use shared::admin::{TopicAdmin, TopicSpec};
use shared::group::coordinator::Coordinator;
use shared::settings::ConnectionSettings;

use crate::{unique_name, workspace_root};

const CLIENT_DEADLINE: Duration = Duration::from_secs(60);

/// One of the three services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    Producer,
    Inventory,
    Analytics,
}

impl Service {
    fn binary_name(self) -> &'static str {
        match self {
            Service::Producer => "producer-order",
            Service::Inventory => "inventory-consumer",
            Service::Analytics => "analytics-consumer",
        }
    }

    fn env_file(self) -> &'static str {
        match self {
            Service::Producer => "services/producer_order/producer.env",
            Service::Inventory => "services/inventory_consumer/inventory.env",
            Service::Analytics => "services/analytics_consumer/analytics.env",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Service::Producer => "producer",
            Service::Inventory => "inventory",
            Service::Analytics => "analytics",
        }
    }
}

/// The service binary built by `cargo test --workspace` (or `cargo build --workspace`) in the
/// same target folder as this test executable.
pub fn service_binary(service: Service) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    // target/<profile>/deps/<test> → target/<profile>/<binary>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test executable sits in target/<profile>/deps");
    let binary = profile_dir.join(service.binary_name());
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo build --workspace` (scripts/test.sh builds it)",
        binary.display()
    );
    binary
}

/// `GET /metrics` from an analytics consumer on a local port, parsed; `None` while it does
/// not answer 200.
pub fn analytics_metrics(port: u16) -> Option<serde_json::Value> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\nAccept: application/json\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return None;
    }
    serde_json::from_str(body).ok()
}

/// A count in the `/metrics` JSON (0 when absent).
pub fn count(metrics: &serde_json::Value, pointer: &str) -> u64 {
    metrics
        .pointer(pointer)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

/// Topic and group names unique to one pipeline.
#[derive(Debug, Clone)]
pub struct PipelineNames {
    pub orders: String,
    pub inventory: String,
    pub dead_letters: String,
    pub state: String,
    pub inventory_group: String,
    pub analytics_group: String,
    pub analytics_instance: String,
}

impl PipelineNames {
    fn unique(prefix: &str) -> Self {
        let base = unique_name(prefix);
        Self {
            orders: format!("{base}-orders"),
            inventory: format!("{base}-inventory"),
            dead_letters: format!("{base}-dlq"),
            state: format!("{base}-state"),
            inventory_group: format!("{base}-inventory-group"),
            analytics_group: format!("{base}-analytics-group"),
            analytics_instance: format!("{base}-analytics-1"),
        }
    }
}

/// Dead letters, counted by distinct source record (a replay may write one twice).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetters {
    /// reason header → distinct (source partition, source offset).
    pub distinct_by_reason: BTreeMap<String, usize>,
    /// Every record in the topic, repeats included.
    pub records: usize,
}

impl DeadLetters {
    pub fn distinct(&self, reason: &str) -> usize {
        self.distinct_by_reason.get(reason).copied().unwrap_or(0)
    }
}

struct Running {
    child: Child,
}

/// The three services against one broker.
pub struct Pipeline {
    pub names: PipelineNames,
    pub partitions: i32,
    pub http_port: u16,
    bootstrap: String,
    logs: tempfile::TempDir,
    running: BTreeMap<Service, Running>,
    starts: BTreeMap<Service, u32>,
    settings: BTreeMap<Service, Vec<(String, String)>>,
}

impl Pipeline {
    /// Creates the four topics (the changelog compacted) and prepares, without starting, the
    /// services. Defaults suit tests: one-second reports, a 6 s session so a dead member is
    /// noticed quickly, 1 ms retry backoff.
    pub async fn create(bootstrap: &str, prefix: &str, partitions: i32) -> Self {
        let names = PipelineNames::unique(prefix);
        let settings = ConnectionSettings::plaintext(vec![bootstrap.to_owned()], "pipeline-test");
        let mut admin = TopicAdmin::connect(&settings, CLIENT_DEADLINE)
            .await
            .expect("admin connects");
        admin
            .create_topics(&[
                TopicSpec::new(&names.orders, partitions, 1),
                TopicSpec::new(&names.inventory, partitions, 1),
                TopicSpec::new(&names.dead_letters, partitions, 1),
                TopicSpec::new(&names.state, partitions, 1)
                    .with_config("cleanup.policy", "compact"),
            ])
            .await
            .expect("topics are created");
        let common = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            let mut all = vec![
                ("BOOTSTRAP_SERVERS".to_owned(), bootstrap.to_owned()),
                ("RUST_LOG".to_owned(), "info,rskafka=warn".to_owned()),
                ("CREATE_TOPICS".to_owned(), "0".to_owned()),
                ("TOPIC_WAIT_TIMEOUT_SEC".to_owned(), "120".to_owned()),
            ];
            all.extend(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            );
            all
        };
        let http_port = crate::broker::free_port();
        let mut per_service = BTreeMap::new();
        per_service.insert(
            Service::Producer,
            common(&[
                ("ORDER_TOPIC", &names.orders),
                ("PROGRESS_INTERVAL_SEC", "1"),
            ]),
        );
        per_service.insert(
            Service::Inventory,
            common(&[
                ("ORDER_TOPIC", &names.orders),
                ("INVENTORY_TOPIC", &names.inventory),
                ("DLQ_TOPIC", &names.dead_letters),
                ("STATE_TOPIC", &names.state),
                ("GROUP_ID", &names.inventory_group),
                ("SESSION_TIMEOUT_MS", "6000"),
                ("RETRY_BACKOFF_MS", "1"),
                ("REPORT_INTERVAL_SEC", "1"),
            ]),
        );
        per_service.insert(
            Service::Analytics,
            common(&[
                ("ORDER_TOPIC", &names.orders),
                ("INVENTORY_TOPIC", &names.inventory),
                ("GROUP_ID", &names.analytics_group),
                ("GROUP_INSTANCE_ID", &names.analytics_instance),
                ("SESSION_TIMEOUT_MS", "30000"),
                ("HTTP_HOST", "127.0.0.1"),
                ("HTTP_PORT", &http_port.to_string()),
                ("REPORT_INTERVAL_SEC", "1"),
            ]),
        );
        Self {
            names,
            partitions,
            http_port,
            bootstrap: bootstrap.to_owned(),
            logs: tempfile::tempdir().expect("a folder for the service logs"),
            running: BTreeMap::new(),
            starts: BTreeMap::new(),
            settings: per_service,
        }
    }

    /// Overrides one setting of a service for its later starts.
    pub fn set(&mut self, service: Service, variable: &str, value: impl ToString) {
        let settings = self.settings.entry(service).or_default();
        settings.retain(|(name, _)| name != variable);
        settings.push((variable.to_owned(), value.to_string()));
    }

    /// Starts a service: its env file, then the pipeline's settings (see [`Pipeline::set`]).
    pub fn start(&mut self, service: Service) {
        assert!(
            !self.running.contains_key(&service),
            "{} is already running",
            service.label()
        );
        let start = self.starts.entry(service).or_default();
        *start += 1;
        let log = self
            .logs
            .path()
            .join(format!("{}-{}.log", service.label(), start));
        let file = File::create(&log).expect("a log file");
        let child = Command::new(service_binary(service))
            .current_dir(workspace_root())
            .env_clear()
            .env("ENV_FILE", workspace_root().join(service.env_file()))
            .envs(self.settings[&service].iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file)
            .spawn()
            .expect("the service starts");
        self.running.insert(service, Running { child });
    }

    pub fn pid(&self, service: Service) -> u32 {
        self.running[&service].child.id()
    }

    /// Sends a signal by name (`KILL`, `TERM`, `STOP`, `CONT`).
    pub fn signal(&self, service: Service, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid(service).to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {}", service.label());
    }

    /// kill -9, and reaps the process.
    pub fn kill(&mut self, service: Service) {
        self.signal(service, "KILL");
        if let Some(mut running) = self.running.remove(&service) {
            let _ = running.child.wait();
        }
    }

    /// SIGTERM and waits for the exit (a graceful stop: final commits, summary).
    pub fn stop(&mut self, service: Service, limit: Duration) -> ExitStatus {
        self.signal(service, "TERM");
        self.wait_exit(service, limit)
    }

    /// Waits for a service to exit by itself (the producer after its total).
    pub fn wait_exit(&mut self, service: Service, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            let running = self
                .running
                .get_mut(&service)
                .expect("the service was started");
            if let Some(status) = running.child.try_wait().expect("try_wait") {
                self.running.remove(&service);
                return status;
            }
            if started.elapsed() > limit {
                self.fail(&format!(
                    "{} did not exit within {limit:?}",
                    service.label()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Panics with the message and the tail of every service log.
    pub fn fail(&self, message: &str) -> ! {
        panic!("{message}\n{}", self.log_tails(40));
    }

    /// The last lines of every log this pipeline wrote, newest start of each service last.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.logs.path())
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let tail = &all[all.len().saturating_sub(lines)..];
            out.push_str(&format!(
                "----- {} (last {} lines)\n{}\n",
                path.file_name().unwrap_or_default().to_string_lossy(),
                tail.len(),
                tail.join("\n")
            ));
        }
        out
    }

    /// Whether the process is still alive (not exited, not reaped).
    pub fn is_running(&mut self, service: Service) -> bool {
        match self.running.get_mut(&service) {
            Some(running) => running.child.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    /// analytics' `GET /metrics`, parsed; `None` while it does not answer.
    pub fn metrics(&self) -> Option<serde_json::Value> {
        analytics_metrics(self.http_port)
    }

    /// Polls `/metrics` until `done` holds; on time-out fails with the last answer and the logs.
    /// Every running service must stay alive meanwhile (a crash fails at once, with its log).
    pub async fn metrics_until(
        &mut self,
        what: &str,
        limit: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let started = Instant::now();
        let mut last = None;
        loop {
            if let Some(metrics) = self.metrics() {
                if done(&metrics) {
                    return metrics;
                }
                last = Some(metrics);
            }
            for service in [Service::Inventory, Service::Analytics] {
                if self.running.contains_key(&service) && !self.is_running(service) {
                    self.fail(&format!(
                        "{} exited while waiting for {what}",
                        service.label()
                    ));
                }
            }
            if started.elapsed() > limit {
                self.fail(&format!(
                    "waited {limit:?} for {what}; last /metrics: {}",
                    last.map(|m| m.to_string()).unwrap_or_else(|| "none".into())
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The end state every end-to-end and chaos test must reach, asserted exactly: the
    /// producer had every order acknowledged; the inventory group committed everything;
    /// analytics saw each order once and one distinct outcome per order; reserved + rejected +
    /// failed = orders; distinct dead letters = failed (+ `malformed` poison records). Returns
    /// the final metrics.
    pub async fn reconcile(
        &mut self,
        limit: Duration,
        orders: u64,
        malformed: u64,
    ) -> serde_json::Value {
        if self.is_running(Service::Producer) {
            let status = self.wait_exit(Service::Producer, limit);
            assert!(
                status.success(),
                "the producer had every order acknowledged"
            );
        }
        self.inventory_caught_up(limit).await;
        let metrics = self
            // Analytics' lag is measured against the high watermark of its last fetch answer,
            // which may predate the last records written (poison written after the last
            // orders): lag 0 alone let the check run before the last malformed records were
            // read. Waiting for every expected count too closes that race; the equalities
            // below still catch a count that goes past what was written.
            .metrics_until("analytics to see everything", limit, |m| {
                count(m, "/orders/total") >= orders
                    && count(m, "/processed_order_count") >= orders
                    && count(m, "/malformed_records") >= malformed
                    && m["lag_total"] == 0
            })
            .await;
        assert_eq!(count(&metrics, "/orders/total"), orders, "orders seen once");
        assert_eq!(
            count(&metrics, "/processed_order_count"),
            orders,
            "exactly one distinct outcome per order"
        );
        let failed = count(&metrics, "/outcomes_total/failed");
        assert_eq!(
            count(&metrics, "/outcomes_total/reserved")
                + count(&metrics, "/outcomes_total/rejected")
                + failed,
            orders
        );
        assert_eq!(count(&metrics, "/malformed_records"), malformed);
        let dead_letters = self.dead_letters().await;
        assert_eq!(
            dead_letters.distinct("failed") as u64,
            failed,
            "{dead_letters:?}"
        );
        assert_eq!(dead_letters.distinct("malformed") as u64, malformed);
        assert_eq!(self.inventory_lag().await, 0);
        metrics
    }

    fn connection(&self) -> ConnectionSettings {
        ConnectionSettings::plaintext(vec![self.bootstrap.clone()], "pipeline-test")
    }

    async fn data_client(&self) -> Client {
        shared::connect::data_client(&self.connection(), CLIENT_DEADLINE)
            .await
            .expect("a data client")
    }

    /// The end offset of every partition of a topic.
    async fn end_offsets(&self, topic: &str) -> Vec<i64> {
        let client = self.data_client().await;
        let mut ends = Vec::new();
        for partition in 0..self.partitions {
            let partition_client = client
                .partition_client(topic, partition, UnknownTopicHandling::Retry)
                .await
                .expect("a partition client");
            ends.push(
                partition_client
                    .get_offset(OffsetAt::Latest)
                    .await
                    .expect("the end offset"),
            );
        }
        ends
    }

    /// Orders not yet committed by the inventory group: Σ (end offset − committed offset).
    pub async fn inventory_lag(&self) -> i64 {
        let ends = self.end_offsets(&self.names.orders).await;
        let mut coordinator = Coordinator::new(
            &self.connection(),
            &self.names.inventory_group,
            CLIENT_DEADLINE,
        );
        let partitions = vec![(self.names.orders.clone(), (0..self.partitions).collect())];
        let (error, committed) = coordinator
            .committed(&partitions)
            .await
            .expect("OffsetFetch answers");
        assert_eq!(error, 0, "OffsetFetch error code");
        let mut lag = 0;
        for (_, offset) in committed {
            let end = ends[usize::try_from(offset.partition).expect("partition index")];
            lag += end - offset.offset.max(0);
        }
        lag
    }

    /// Waits until the inventory group has committed every order in the log.
    pub async fn inventory_caught_up(&mut self, limit: Duration) {
        let started = Instant::now();
        loop {
            let lag = self.inventory_lag().await;
            if lag == 0 {
                return;
            }
            if !self.is_running(Service::Inventory)
                && self.running.contains_key(&Service::Inventory)
            {
                self.fail("inventory exited before catching up");
            }
            if started.elapsed() > limit {
                self.fail(&format!("the inventory group still lags by {lag} orders"));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The inventory group as the coordinator describes it: (state, member count).
    pub async fn inventory_group_state(&self) -> (String, usize) {
        let mut coordinator = Coordinator::new(
            &self.connection(),
            &self.names.inventory_group,
            CLIENT_DEADLINE,
        );
        let description = coordinator
            .describe()
            .await
            .expect("DescribeGroups answers");
        (description.state, description.members.len())
    }

    /// Every dead letter, by reason, counted by distinct source record.
    pub async fn dead_letters(&self) -> DeadLetters {
        let letters = crate::topic::read_all(
            &self.connection(),
            &self.names.dead_letters,
            self.partitions,
        )
        .await;
        let mut distinct: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
        for (_, record) in &letters {
            let header = |name: &str| {
                record
                    .record
                    .headers
                    .get(name)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default()
            };
            distinct
                .entry(header("reason"))
                .or_default()
                .insert((header("source-partition"), header("source-offset")));
        }
        DeadLetters {
            distinct_by_reason: distinct.into_iter().map(|(k, v)| (k, v.len())).collect(),
            records: letters.len(),
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tails(30));
        }
        for running in self.running.values_mut() {
            // A frozen child must be thawed to die; one that already exited needs nothing.
            let _ = Command::new("kill")
                .args(["-CONT", &running.child.id().to_string()])
                .stderr(Stdio::null())
                .status();
            let _ = running.child.kill();
            let _ = running.child.wait();
        }
    }
}

/// One heavy pipeline test at a time in a test binary: three services plus the broker already
/// fill two cores, and session time-outs must not be missed because the machine is busy.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static SLOT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SLOT.lock().await
}
