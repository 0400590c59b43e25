//! A private broker for one test binary: its own port, its own storage, stopped when dropped
//! and, for the one shared per binary, when the test process ends for any reason.
//!
//! The broker runs under a tiny `sh` supervisor that reads our end of a pipe: when the test
//! process exits (even killed), the pipe closes and the supervisor stops the broker. That is
//! what makes "stopped even on panic" hold for a `static` broker, whose `Drop` never runs.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use shared::admin::TopicAdmin;
use shared::settings::{
    ConnectionSettings, SaslCredentials, SaslMechanism, SecurityProtocol, SecuritySettings,
};

const READY_DEADLINE: Duration = Duration::from_secs(60);

/// Where the broker keeps its data.
#[derive(Debug, Clone)]
pub enum Storage {
    Memory,
    /// sqlite in this folder: survives a broker restart.
    Durable(PathBuf),
}

/// A certificate and key that make the broker's listener TLS-only.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA that signed `cert`, for clients.
    pub ca: PathBuf,
}

/// A SCRAM user the broker requires (`--authentication`).
#[derive(Debug, Clone)]
pub struct SaslUser {
    pub name: String,
    pub password: String,
}

#[derive(Debug)]
pub struct TestBroker {
    port: u16,
    storage: Storage,
    tls: Option<ServerTls>,
    sasl: Option<SaslUser>,
    supervisor: Option<Child>,
    /// Held open for the supervisor; closing it stops the broker.
    lifeline: Option<ChildStdin>,
    log_dir: tempfile::TempDir,
}

static SHARED: OnceLock<TestBroker> = OnceLock::new();

/// The broker every test in this binary shares (started on first use).
pub fn shared_broker() -> &'static TestBroker {
    SHARED.get_or_init(|| TestBroker::start(Storage::Memory))
}

/// The installed broker binary, or a panic that says how to install it.
pub fn broker_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("STREAMING_KAFKA_BROKER_BIN") {
        return path.into();
    }
    let bin = super::cache_dir().join("bin");
    for name in ["nisshi", "tansu"] {
        let candidate = bin.join(name);
        if candidate.exists() {
            return candidate;
        }
    }
    panic!(
        "no broker in {}: run scripts/broker.sh install (builds Nisshi once per machine)",
        bin.display()
    );
}

/// The command-line arguments that start `binary` on `port` with `storage`.
pub fn broker_args(binary: &Path, port: u16, storage: &Storage) -> Vec<String> {
    let url = format!("tcp://127.0.0.1:{port}");
    let engine = match storage {
        Storage::Memory => format!("memory://broker-{port}/"),
        // Nisshi reads the part after `sqlite://` as a path, so an absolute one needs its own
        // leading slash: `sqlite:////tmp/x/broker.db`.
        Storage::Durable(dir) => format!("sqlite:///{}/broker.db", dir.display()),
    };
    let is_tansu = binary
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("tansu"));
    let (listener, advertised) = if is_tansu {
        ("--kafka-listener-url", "--kafka-advertised-listener-url")
    } else {
        ("--listener-url", "--advertised-listener-url")
    };
    let mut args = vec![
        "broker".into(),
        listener.into(),
        url.clone(),
        advertised.into(),
        url,
        "--storage-engine".into(),
        engine,
    ];
    if !is_tansu {
        // Tests join groups often; Kafka's 3 s initial rebalance delay would only slow them.
        args.extend(["--group-initial-rebalance-delay".into(), "0s".into()]);
    }
    args
}

impl TestBroker {
    /// Starts a broker on a free port and waits until it answers a Metadata request.
    pub fn start(storage: Storage) -> Self {
        Self::start_with(storage, None)
    }

    /// Starts a broker whose listener speaks TLS only.
    pub fn start_tls(tls: ServerTls) -> Self {
        Self::start_with(Storage::Memory, Some(tls))
    }

    /// Starts a broker that requires SCRAM authentication (SHA-256 and SHA-512) for `user`.
    /// Nisshi keeps SCRAM users in durable storage and its CLI creates them only on a broker
    /// without authentication, so the user is created first and the broker restarted.
    pub fn start_sasl(data: &Path, user: SaslUser) -> Self {
        let mut broker = Self::start(Storage::Durable(data.to_path_buf()));
        for mechanism in ["scram256", "scram512"] {
            let output = Command::new(broker_binary())
                .args([
                    "user",
                    "create",
                    &user.name,
                    &user.password,
                    "--mechanism",
                    mechanism,
                ])
                .arg("--broker")
                .arg(format!("tcp://{}", broker.bootstrap()))
                .output()
                .expect("nisshi user create runs");
            assert!(
                output.status.success(),
                "creating the SCRAM user: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        broker.sasl = Some(user);
        broker.restart();
        broker
    }

    fn start_with(storage: Storage, tls: Option<ServerTls>) -> Self {
        let mut last_failure = String::new();
        // A free port can be taken between our probe and the broker's bind; try a few.
        for _ in 0..3 {
            let mut broker = Self::spawn(free_port(), storage.clone(), tls.clone(), None);
            match broker.wait_until_ready() {
                Ok(()) => return broker,
                Err(failure) => {
                    broker.stop();
                    last_failure = failure;
                }
            }
        }
        panic!("the test broker did not start: {last_failure}");
    }

    /// Starts it again on the same port and storage (after [`TestBroker::stop`]).
    pub fn restart(&mut self) {
        self.stop();
        let mut fresh = Self::spawn(
            self.port,
            self.storage.clone(),
            self.tls.clone(),
            self.sasl.clone(),
        );
        self.supervisor = fresh.supervisor.take();
        self.lifeline = fresh.lifeline.take();
        std::mem::swap(&mut self.log_dir, &mut fresh.log_dir);
        if let Err(failure) = self.wait_until_ready() {
            panic!("the test broker did not restart: {failure}");
        }
    }

    fn spawn(port: u16, storage: Storage, tls: Option<ServerTls>, sasl: Option<SaslUser>) -> Self {
        let binary = broker_binary();
        let log_dir = tempfile::tempdir().expect("temp dir for the broker log");
        let log = log_dir.path().join("broker.log");
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(
                // Start the broker, then wait for our pipe to close (EOF) and stop it.
                r#"log="$1"; shift; "$@" >"$log" 2>&1 & pid=$!
                   trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; exit 0' TERM INT
                   cat >/dev/null; kill $pid 2>/dev/null; wait $pid 2>/dev/null"#,
            )
            .arg("broker-supervisor")
            .arg(&log)
            .arg(&binary)
            .args(broker_args(&binary, port, &storage))
            .args(tls.iter().flat_map(|tls| {
                [
                    "--cert".into(),
                    tls.cert.clone().into_os_string(),
                    "--key".into(),
                    tls.key.clone().into_os_string(),
                ]
            }))
            .args(sasl.iter().map(|_| "--authentication"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut supervisor = command.spawn().expect("sh starts the broker supervisor");
        let lifeline = supervisor.stdin.take();
        Self {
            port,
            storage,
            tls,
            sasl,
            supervisor: Some(supervisor),
            lifeline,
            log_dir,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, the value for `BOOTSTRAP_SERVERS`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Settings that reach this broker (TLS with its CA when it speaks TLS).
    pub fn connection_settings(&self, client_id: &str) -> ConnectionSettings {
        let mut settings = ConnectionSettings::plaintext(vec![self.bootstrap()], client_id);
        if let Some(tls) = &self.tls {
            settings.security = SecuritySettings {
                protocol: SecurityProtocol::Ssl,
                sasl: None,
                ca_location: Some(tls.ca.clone()),
            };
        }
        if let Some(user) = &self.sasl {
            settings.security.protocol = if self.tls.is_some() {
                SecurityProtocol::SaslSsl
            } else {
                SecurityProtocol::SaslPlaintext
            };
            settings.security.sasl = Some(SaslCredentials {
                mechanism: SaslMechanism::ScramSha512,
                username: user.name.clone(),
                password: user.password.clone(),
            });
        }
        settings
    }

    /// The broker's own log so far (for failure messages).
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(self.log_dir.path().join("broker.log")) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// Stops the broker and waits until it has exited.
    pub fn stop(&mut self) {
        if let Some(mut supervisor) = self.supervisor.take() {
            // Closing the pipe makes the supervisor stop the broker and wait for it.
            drop(self.lifeline.take());
            let _ = supervisor.wait();
        }
    }

    fn wait_until_ready(&mut self) -> Result<(), String> {
        let settings = self.connection_settings("test-harness");
        let started = Instant::now();
        loop {
            if let Some(supervisor) = self.supervisor.as_mut()
                && let Ok(Some(status)) = supervisor.try_wait()
            {
                return Err(format!("it exited ({status}); log:\n{}", self.log()));
            }
            if answers_metadata(&settings) {
                return Ok(());
            }
            if started.elapsed() > READY_DEADLINE {
                return Err(format!(
                    "no Metadata answer on port {} within {READY_DEADLINE:?}; log:\n{}",
                    self.port,
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a broker answers a Metadata request. Runs on its own thread and runtime so it can
/// be called from sync code and from inside async tests alike.
fn answers_metadata(settings: &ConnectionSettings) -> bool {
    let settings = settings.clone();
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return false;
        };
        runtime.block_on(async {
            let Ok(mut admin) = TopicAdmin::connect(&settings, Duration::from_millis(500)).await
            else {
                return false;
            };
            admin.describe_topics(&[]).await.is_ok()
        })
    })
    .join()
    .unwrap_or(false)
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("the OS hands out a free port")
}
