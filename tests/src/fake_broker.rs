//! A hostile broker: a Kafka-aware TCP front for a private Nisshi that advertises the front's
//! address (so every connection a client opens passes it), which answers chosen requests of
//! chosen clients with frames no honest broker sends — a count far past the frame, a response
//! cut short inside a well-formed frame, a length prefix past any client's maximum, a stream
//! that ends mid-frame, a Fetch answer with a hole in its offsets — and forwards everything
//! else, so a client that survives the hostile answers then meets a real broker.
//!
//! Each planned answer is used once, by the first matching request whose answer it can alter
//! (a Fetch answer without a batch to remove passes, and the plan waits for the next), except
//! a lasting hole, which alters every answer it can. Only our own connections are targeted
//! (their ApiVersions names the client software `streaming-kafka`); rskafka's, whose decoding
//! is not ours to bound, pass untouched. The hostile frames are the broker's real answers,
//! altered (`answers`).

use std::collections::VecDeque;
use std::io::Read;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::broker::{Storage, broker_args, broker_binary, free_port};

mod answers;
mod fetch_hole;

pub use fetch_hole::RemovedBatch;

const API_VERSIONS: i16 = 18;
/// What our connection sends as ApiVersions' client software name.
const OUR_SOFTWARE: &str = "streaming-kafka";

/// One hostile answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostility {
    /// The real answer with its first array's count replaced by the largest one its encoding
    /// can say (i32::MAX, or a five-byte compact varint).
    OversizedCount,
    /// The real answer cut to half its body, in a frame whose length prefix fits the cut.
    TruncatedBody,
    /// A length prefix of i32::MAX bytes, then a few bytes and the connection closes.
    LengthPastMaximum,
    /// The real length prefix and half the answer, then the connection closes.
    CutOff,
    /// A Fetch answer without the first batch of the first partition whose records hold two:
    /// the hole Nisshi's memory engine shows while a batch it has counted is still being
    /// stored. An answer with no such partition passes, and the plan waits for the next.
    FirstBatchMissing,
    /// Every Fetch answer without the batch at this base offset, for as long as the front
    /// runs: a lasting hole, as compaction leaves. Never used up.
    BatchMissing { base_offset: i64 },
}

impl Hostility {
    /// Whether the plan stays after altering an answer.
    fn lasting(self) -> bool {
        matches!(self, Self::BatchMissing { .. })
    }
}

/// A planned answer: the next `api_key` request of a client whose id starts with `client_prefix`.
#[derive(Debug, Clone)]
struct Planned {
    client_prefix: String,
    api_key: i16,
    hostility: Hostility,
}

/// What was done to whom, and when, for tests to prove the hostility was real: one per altered
/// answer sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub client_id: String,
    pub api_key: i16,
    pub version: i16,
    pub hostility: Hostility,
    /// The batches cut out of a Fetch answer.
    pub removed: Vec<RemovedBatch>,
    /// When the altered answer was sent on.
    pub at: Instant,
}

#[derive(Default)]
struct Plan {
    planned: Mutex<VecDeque<Planned>>,
    delivered: Mutex<Vec<Delivered>>,
}

impl Plan {
    /// The first plan for this request; a lasting one stays planned.
    fn take(&self, client_id: &str, api_key: i16) -> Option<Planned> {
        let mut planned = self.planned.lock().ok()?;
        let position = planned.iter().position(|p| {
            p.api_key == api_key && client_id.starts_with(p.client_prefix.as_str())
        })?;
        if planned[position].hostility.lasting() {
            return Some(planned[position].clone());
        }
        planned.remove(position)
    }

    /// Puts back a plan whose answer it could not alter, first in line again.
    fn restore(&self, plan: Planned) {
        if !plan.hostility.lasting()
            && let Ok(mut planned) = self.planned.lock()
        {
            planned.push_front(plan);
        }
    }
}

/// The running front and its broker; dropping it stops both.
pub struct HostileBroker {
    port: u16,
    plan: Arc<Plan>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    broker_port: u16,
    supervisor: Option<Child>,
    lifeline: Option<ChildStdin>,
    log_dir: tempfile::TempDir,
}

impl HostileBroker {
    pub fn start(storage: Storage) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("the front binds");
        let port = listener.local_addr().expect("bound address").port();
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let broker_port = free_port();
        let upstream = format!("127.0.0.1:{broker_port}");
        let plan = Arc::new(Plan::default());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let serving = Arc::clone(&plan);
        // Its own thread and runtime, so it answers while a test blocks on a child process.
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
                    () = accept_loop(listener, upstream, serving) => {}
                    _ = stopped => {}
                }
            });
        });
        let binary = broker_binary();
        let mut args = broker_args(&binary, broker_port, &storage);
        let advertised = args
            .iter()
            .position(|a| a.ends_with("advertised-listener-url"))
            .map(|i| i + 1)
            .expect("the broker takes an advertised listener");
        args[advertised] = format!("tcp://127.0.0.1:{port}");
        let log_dir = tempfile::tempdir().expect("temp dir for the broker log");
        // The same pipe lifeline as the other test brokers: it dies with the test process.
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
            port,
            plan,
            stop: Some(stop),
            thread: Some(thread),
            broker_port,
            supervisor: Some(supervisor),
            lifeline,
            log_dir,
        };
        broker.wait_until_listening();
        broker
    }

    /// Where clients bootstrap: the front.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Plans one hostile answer to the next `api_key` request of matching clients.
    pub fn plan(&self, client_prefix: &str, api_key: i16, hostility: Hostility) {
        if let Ok(mut planned) = self.plan.planned.lock() {
            planned.push_back(Planned {
                client_prefix: client_prefix.to_owned(),
                api_key,
                hostility,
            });
        }
    }

    /// Planned answers not sent yet (a lasting hole is always pending).
    pub fn pending(&self) -> usize {
        self.plan.planned.lock().map(|p| p.len()).unwrap_or(0)
    }

    pub fn delivered(&self) -> Vec<Delivered> {
        self.plan
            .delivered
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    }

    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(self.log_dir.path().join("broker.log")) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    fn wait_until_listening(&self) {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.broker_port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the broker behind the hostile front did not listen within 60 s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for HostileBroker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(mut supervisor) = self.supervisor.take() {
            drop(self.lifeline.take());
            let _ = supervisor.wait();
        }
    }
}

async fn accept_loop(listener: TcpListener, upstream: String, plan: Arc<Plan>) {
    while let Ok((client, _)) = listener.accept().await {
        tokio::spawn(serve(client, upstream.clone(), Arc::clone(&plan)));
    }
}

/// A request on its way to the broker, and what its answer will meet.
struct Waiting {
    correlation_id: i32,
    api_key: i16,
    version: i16,
    client_id: String,
    planned: Option<Planned>,
}

async fn serve(client: TcpStream, upstream: String, plan: Arc<Plan>) {
    let Ok(broker) = TcpStream::connect(&upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = broker.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut broker_read, mut broker_write) = broker.into_split();
    let waiting: Arc<Mutex<VecDeque<Waiting>>> = Arc::default();
    let requests = {
        let waiting = Arc::clone(&waiting);
        let plan = Arc::clone(&plan);
        async move {
            // Decided by the connection's first request, as our client always opens with
            // ApiVersions naming itself.
            let mut ours = None;
            loop {
                let Ok(frame) = read_frame(&mut client_read).await else {
                    return;
                };
                let Some(header) = RequestHeader::parse(&frame) else {
                    return;
                };
                let ours =
                    *ours.get_or_insert_with(|| header.software.as_deref() == Some(OUR_SOFTWARE));
                let planned = if ours {
                    plan.take(&header.client_id, header.api_key)
                } else {
                    None
                };
                if let Ok(mut queue) = waiting.lock() {
                    queue.push_back(Waiting {
                        correlation_id: header.correlation_id,
                        api_key: header.api_key,
                        version: header.version,
                        client_id: header.client_id,
                        planned,
                    });
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
            let request = waiting.lock().ok().and_then(|mut queue| {
                let position = queue
                    .iter()
                    .position(|w| Some(w.correlation_id) == correlation_id)?;
                queue.remove(position)
            });
            let Some(request) = request else {
                return;
            };
            let altered = request.planned.as_ref().and_then(|planned| {
                answers::hostile(&frame, request.api_key, request.version, planned.hostility)
            });
            let (out, then_close) = match (altered, request.planned) {
                (Some(altered), Some(planned)) => {
                    if let Ok(mut delivered) = plan.delivered.lock() {
                        delivered.push(Delivered {
                            client_id: request.client_id,
                            api_key: request.api_key,
                            version: request.version,
                            hostility: planned.hostility,
                            removed: altered.removed,
                            at: Instant::now(),
                        });
                    }
                    (altered.frame, altered.then_close)
                }
                (_, planned) => {
                    // Not alterable (a Fetch answer without the batch): the plan waits.
                    if let Some(planned) = planned {
                        plan.restore(planned);
                    }
                    (frame, false)
                }
            };
            if client_write.write_all(&out).await.is_err() || then_close {
                let _ = client_write.flush().await;
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

/// What the front reads of a request: its header, and ApiVersions' client software name.
struct RequestHeader {
    api_key: i16,
    version: i16,
    correlation_id: i32,
    client_id: String,
    software: Option<String>,
}

impl RequestHeader {
    /// Length prefix, api key, api version, correlation id, the client id as a nullable i16
    /// string (even in flexible header v2); for ApiVersions v3+, then the header's tagged
    /// fields and the body's compact `ClientSoftwareName`.
    fn parse(frame: &[u8]) -> Option<Self> {
        let i16_at = |at: usize| {
            frame
                .get(at..at + 2)
                .map(|b| i16::from_be_bytes([b[0], b[1]]))
        };
        let api_key = i16_at(4)?;
        let version = i16_at(6)?;
        let correlation_id = i32::from_be_bytes(frame.get(8..12)?.try_into().ok()?);
        let client_length = usize::try_from(i16_at(12)?.max(0)).ok()?;
        let client_id = String::from_utf8_lossy(frame.get(14..14 + client_length)?).into_owned();
        let software = (api_key == API_VERSIONS && version >= 3)
            .then(|| {
                let at = 14 + client_length + 1; // an empty tagged-field section
                let length = usize::from(*frame.get(at)?).checked_sub(1)?;
                let name = frame.get(at + 1..at + 1 + length)?;
                Some(String::from_utf8_lossy(name).into_owned())
            })
            .flatten();
        Some(Self {
            api_key,
            version,
            correlation_id,
            client_id,
            software,
        })
    }
}
