//! A fault-injecting, Kafka-aware TCP proxy between clients and a private broker that
//! advertises the proxy's address, so every connection a client opens after bootstrap passes
//! through it too.
//!
//! It reads each request's header (API key, correlation id, client id) and can, per API key, at
//! a chosen rate and for chosen client ids only, lose the broker's answer, delay it, reset the
//! connection instead of answering, or black-hole the client for a while; everyone else (a
//! verifying reader, the harness) passes untouched. The choice a reader may question: it runs
//! on its own thread and runtime, so it keeps forwarding while a test blocks its own runtime
//! waiting on a child process; and decisions come from a seeded counter hash, not a random
//! generator, so a run's faults are the same whatever the timing.

use std::collections::VecDeque;
use std::io::Read;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::broker::{Storage, broker_args, broker_binary, free_port};

/// Kafka API keys the tests target.
pub mod api {
    pub const PRODUCE: i16 = 0;
    pub const FETCH: i16 = 1;
    pub const METADATA: i16 = 3;
    pub const OFFSET_COMMIT: i16 = 8;
    pub const FIND_COORDINATOR: i16 = 10;
    pub const JOIN_GROUP: i16 = 11;
    pub const HEARTBEAT: i16 = 12;
}

/// What happens to a chosen request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The broker handles the request; its answer never reaches the client.
    LoseResponse,
    /// The answer arrives this much later (later answers on the connection wait behind it).
    Delay(Duration),
    /// The broker handles the request; the client's connection is reset instead of answered.
    Reset,
    /// The request is swallowed, and so is every request of matching clients for this long;
    /// then the connections that swallowed requests are closed.
    BlackHole(Duration),
}

/// One rule: requests of `api_key` from clients whose id starts with `client_prefix` meet
/// `action` with probability `rate`.
#[derive(Debug, Clone)]
pub struct Fault {
    pub api_key: i16,
    pub client_prefix: String,
    pub rate: f64,
    pub action: Action,
}

/// How often each thing happened, for tests to prove the faults were real.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub requests: u64,
    pub lost: u64,
    pub delayed: u64,
    pub reset: u64,
    pub black_holed: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    lost: AtomicU64,
    delayed: AtomicU64,
    reset: AtomicU64,
    black_holed: AtomicU64,
}

struct Shared {
    upstream: String,
    seed: u64,
    decisions: AtomicU64,
    /// Plain data behind a std mutex, never held across an await.
    faults: Mutex<Vec<Fault>>,
    black_hole: Mutex<Option<(Instant, i16, String)>>,
    counters: Counters,
}

impl Shared {
    /// The fate of one request, decided when it passes towards the broker.
    fn decide(&self, api_key: i16, client_id: &str) -> Option<Action> {
        if let Ok(mut window) = self.black_hole.lock() {
            match window.as_ref() {
                Some((until, _, _)) if *until <= Instant::now() => *window = None,
                Some((until, key, prefix))
                    if *key == api_key && client_id.starts_with(prefix.as_str()) =>
                {
                    return Some(Action::BlackHole(
                        until.saturating_duration_since(Instant::now()),
                    ));
                }
                _ => {}
            }
        }
        let faults = self.faults.lock().map(|f| f.clone()).unwrap_or_default();
        for fault in faults {
            if fault.api_key != api_key || !client_id.starts_with(fault.client_prefix.as_str()) {
                continue;
            }
            let n = self.decisions.fetch_add(1, Ordering::Relaxed);
            if unit_interval(self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)) < fault.rate {
                if let Action::BlackHole(length) = fault.action
                    && let Ok(mut window) = self.black_hole.lock()
                {
                    *window = Some((
                        Instant::now() + length,
                        api_key,
                        fault.client_prefix.clone(),
                    ));
                }
                return Some(fault.action);
            }
        }
        None
    }
}

/// splitmix64, mapped to [0, 1).
fn unit_interval(x: u64) -> f64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The running proxy; dropping it stops it.
pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on a free local port and forwards every connection to `upstream`.
    pub fn start(upstream: &str, seed: u64) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("the proxy binds");
        let port = listener.local_addr().expect("bound address").port();
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let shared = Arc::new(Shared {
            upstream: upstream.to_owned(),
            seed,
            decisions: AtomicU64::new(0),
            faults: Mutex::new(Vec::new()),
            black_hole: Mutex::new(None),
            counters: Counters::default(),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let serving = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(listener) = TcpListener::from_std(listener) else {
                    return;
                };
                tokio::select! {
                    () = accept_loop(listener, serving) => {}
                    _ = stopped => {}
                }
            });
        });
        Self {
            port,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`: where clients bootstrap.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Adds a rule (rules are tried in the order added; the first that fires wins).
    pub fn inject(&self, fault: Fault) {
        if let Ok(mut faults) = self.shared.faults.lock() {
            faults.push(fault);
        }
    }

    /// Removes every rule and ends a black-hole window.
    pub fn heal(&self) {
        if let Ok(mut faults) = self.shared.faults.lock() {
            faults.clear();
        }
        if let Ok(mut window) = self.shared.black_hole.lock() {
            *window = None;
        }
    }

    pub fn counts(&self) -> FaultCounts {
        let c = &self.shared.counters;
        FaultCounts {
            requests: c.requests.load(Ordering::Relaxed),
            lost: c.lost.load(Ordering::Relaxed),
            delayed: c.delayed.load(Ordering::Relaxed),
            reset: c.reset.load(Ordering::Relaxed),
            black_holed: c.black_holed.load(Ordering::Relaxed),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((client, _)) = listener.accept().await {
        tokio::spawn(serve(client, Arc::clone(&shared)));
    }
}

/// Correlation ids of requests forwarded on one connection, with what awaits their answers.
type PendingDecisions = VecDeque<(i32, Option<Action>)>;

/// One client connection and its own connection to the broker.
async fn serve(client: TcpStream, shared: Arc<Shared>) {
    let Ok(broker) = TcpStream::connect(&shared.upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = broker.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut broker_read, mut broker_write) = broker.into_split();
    // Decisions for requests on their way, in order: Kafka answers a connection in order.
    let pending: Arc<Mutex<PendingDecisions>> = Arc::default();
    let requests = {
        let pending = Arc::clone(&pending);
        let shared = Arc::clone(&shared);
        async move {
            loop {
                let Ok(frame) = read_frame(&mut client_read).await else {
                    return;
                };
                let Some(header) = RequestHeader::parse(&frame) else {
                    return;
                };
                shared.counters.requests.fetch_add(1, Ordering::Relaxed);
                let action = shared.decide(header.api_key, &header.client_id);
                if let Some(Action::BlackHole(length)) = action {
                    shared.counters.black_holed.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(length).await;
                    return;
                }
                if let Ok(mut queue) = pending.lock() {
                    queue.push_back((header.correlation_id, action));
                }
                if broker_write.write_all(&frame).await.is_err() {
                    return;
                }
            }
        }
    };
    let answers = async move {
        loop {
            let Ok(frame) = read_frame(&mut broker_read).await else {
                return;
            };
            let correlation_id = frame
                .get(4..8)
                .and_then(|b| b.try_into().ok())
                .map(i32::from_be_bytes);
            let action = pending.lock().ok().and_then(|mut queue| {
                let position = queue
                    .iter()
                    .position(|(id, _)| Some(*id) == correlation_id)?;
                queue.remove(position).and_then(|(_, action)| action)
            });
            match action {
                Some(Action::LoseResponse) => {
                    shared.counters.lost.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Some(Action::Reset) => {
                    shared.counters.reset.fetch_add(1, Ordering::Relaxed);
                    // Linger 0 turns the close into a TCP reset; with a zero linger the close
                    // does not block, which is what the deprecation warns about.
                    #[allow(deprecated)]
                    let _ = client_write.as_ref().set_linger(Some(Duration::ZERO));
                    return;
                }
                Some(Action::Delay(length)) => {
                    shared.counters.delayed.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(length).await;
                }
                Some(Action::BlackHole(_)) | None => {}
            }
            if client_write.write_all(&frame).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = requests => {}
        () = answers => {}
    }
}

/// A whole frame, its 4-byte length prefix included.
async fn read_frame<R: tokio::io::AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<Vec<u8>> {
    let length = reader.read_i32().await?;
    let length = usize::try_from(length)
        .ok()
        .filter(|l| *l <= 256 << 20)
        .ok_or_else(|| std::io::Error::other(format!("frame length {length}")))?;
    let mut frame = vec![0u8; 4 + length];
    frame[..4].copy_from_slice(&(length as i32).to_be_bytes());
    reader.read_exact(&mut frame[4..]).await?;
    Ok(frame)
}

/// The fields of a request header every version starts with.
struct RequestHeader {
    api_key: i16,
    correlation_id: i32,
    client_id: String,
}

impl RequestHeader {
    /// Length prefix, api key, api version, correlation id, then the client id as a nullable
    /// string (a plain i16-length string even in flexible header v2).
    fn parse(frame: &[u8]) -> Option<Self> {
        let i16_at = |at: usize| {
            frame
                .get(at..at + 2)
                .map(|b| i16::from_be_bytes([b[0], b[1]]))
        };
        let api_key = i16_at(4)?;
        let correlation_id = i32::from_be_bytes(frame.get(8..12)?.try_into().ok()?);
        let client_id = match i16_at(12)? {
            length if length < 0 => String::new(),
            length => {
                let bytes = frame.get(14..14 + length as usize)?;
                String::from_utf8_lossy(bytes).into_owned()
            }
        };
        Some(Self {
            api_key,
            correlation_id,
            client_id,
        })
    }
}

/// A private broker that advertises a fault proxy's address, so metadata sends every client
/// back through the proxy; stopped when dropped (and when the test process dies, by the same
/// pipe lifeline as [`crate::TestBroker`]).
pub struct ProxiedBroker {
    pub proxy: FaultProxy,
    broker_port: u16,
    supervisor: Option<Child>,
    lifeline: Option<ChildStdin>,
    log_dir: tempfile::TempDir,
}

impl ProxiedBroker {
    pub fn start(storage: Storage) -> Self {
        let broker_port = free_port();
        let proxy = FaultProxy::start(&format!("127.0.0.1:{broker_port}"), 0x5eed);
        let binary = broker_binary();
        let mut args = broker_args(&binary, broker_port, &storage);
        let advertised = args
            .iter()
            .position(|a| a.ends_with("advertised-listener-url"))
            .map(|i| i + 1)
            .expect("the broker takes an advertised listener");
        args[advertised] = format!("tcp://{}", proxy.address());
        let log_dir = tempfile::tempdir().expect("temp dir for the broker log");
        let mut supervisor = Command::new("sh")
            .arg("-c")
            .arg(
                r#"log="$1"; shift; "$@" >"$log" 2>&1 & pid=$!
                   trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; exit 0' TERM INT
                   cat >/dev/null; kill $pid 2>/dev/null; wait $pid 2>/dev/null"#,
            )
            .arg("broker-supervisor")
            .arg(log_dir.path().join("broker.log"))
            .arg(&binary)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh starts the broker supervisor");
        let lifeline = supervisor.stdin.take();
        let broker = Self {
            proxy,
            broker_port,
            supervisor: Some(supervisor),
            lifeline,
            log_dir,
        };
        broker.wait_until_listening();
        broker
    }

    /// Where clients bootstrap: the proxy.
    pub fn bootstrap(&self) -> String {
        self.proxy.address()
    }

    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(self.log_dir.path().join("broker.log")) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// Polls the broker's own port until it accepts connections (it binds last).
    fn wait_until_listening(&self) {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.broker_port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the proxied broker did not listen within 60 s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ProxiedBroker {
    fn drop(&mut self) {
        if let Some(mut supervisor) = self.supervisor.take() {
            drop(self.lifeline.take());
            let _ = supervisor.wait();
        }
    }
}
