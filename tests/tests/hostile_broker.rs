//! The three services against a hostile broker (`integration_tests::fake_broker`): each of
//! their first connections meets a count far past its frame, a response cut short inside its
//! frame, a length prefix past the maximum and a stream that ends mid-frame, and their first
//! Metadata an oversized count; then the APIs they live on (Produce, FindCoordinator, Fetch,
//! OffsetCommit, JoinGroup) one hostile answer each. Each service must refuse every one of them
//! with a clear error in its log, stay within a stated peak resident set and address space
//! (VmHWM, VmPeak from `/proc/PID/status`), and, once the real broker behind the front answers,
//! do its work: the pipeline's exact reconciliation (so no order lost or doubled either).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use integration_tests::broker::Storage;
use integration_tests::fake_broker::{HostileBroker, Hostility};
use integration_tests::pipeline::{Pipeline, Service, exclusive};

const ORDERS: u64 = 2_000;
const PARTITIONS: i32 = 3;
const LIMIT: Duration = Duration::from_secs(240);
const PRODUCE: i16 = 0;
const FETCH: i16 = 1;
const METADATA: i16 = 3;
const OFFSET_COMMIT: i16 = 8;
const FIND_COORDINATOR: i16 = 10;
const JOIN_GROUP: i16 = 11;
const API_VERSIONS: i16 = 18;

/// The peak resident set a service may reach in this test (a debug build, a few thousand
/// orders; 33–42 MiB measured).
const PEAK_RSS_LIMIT_KIB: u64 = 128 * 1024;
/// The peak of the address space a service may reserve. Without the bounds check the first
/// oversized count makes `kafka-protocol` reserve 2^32 ApiVersions entries (over 100 GiB):
/// mimalloc maps that without touching it, so the resident set does not show it, but the
/// address space does (or, with another allocator, the process aborts).
const PEAK_VIRTUAL_LIMIT_KIB: u64 = 16 * 1024 * 1024;

const SERVICES: [(Service, &str); 3] = [
    (Service::Producer, "producer-order"),
    (Service::Inventory, "inventory-consumer"),
    (Service::Analytics, "analytics-consumer"),
];

/// After the first connections, the APIs each service lives on, once each (orders and outcomes
/// in flight, a group being joined, partitions fetched and committed), with what its log must
/// then say.
const LATER_HOSTILITIES: [(&str, i16, Hostility, &str); 8] = [
    (
        "producer-order",
        PRODUCE,
        Hostility::OversizedCount,
        "malformed response: ProduceResponse.responses claims 4294967294 elements",
    ),
    (
        "producer-order",
        PRODUCE,
        Hostility::CutOff,
        "produce failed; retrying",
    ),
    (
        "inventory-consumer",
        FIND_COORDINATOR,
        Hostility::OversizedCount,
        "FindCoordinatorResponse.coordinators claims 4294967294 elements",
    ),
    (
        "inventory-consumer",
        FETCH,
        Hostility::OversizedCount,
        "FetchResponse.responses claims 4294967294 elements",
    ),
    (
        "inventory-consumer",
        PRODUCE,
        Hostility::TruncatedBody,
        "decoding Produce v",
    ),
    (
        "inventory-consumer",
        OFFSET_COMMIT,
        Hostility::OversizedCount,
        "OffsetCommitResponse.topics claims 4294967294 elements",
    ),
    (
        "analytics-consumer",
        JOIN_GROUP,
        Hostility::TruncatedBody,
        "JoinGroupResponseMember.member_id needs",
    ),
    (
        "analytics-consumer",
        FETCH,
        Hostility::CutOff,
        "fetching from the broker failed; retrying",
    ),
];

/// VmHWM (peak resident set) and VmPeak (peak address space) of a live process, in KiB.
fn peaks_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((field("VmHWM:")?, field("VmPeak:")?))
}

/// Samples the peaks of each process every 100 ms until dropped; both only grow, so the
/// last sample of a process is its peak up to then.
struct RssSampler {
    peaks: Arc<Mutex<BTreeMap<u32, (u64, u64)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pids: Vec<u32>) -> Self {
        let peaks: Arc<Mutex<BTreeMap<u32, (u64, u64)>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peaks, stop) = (Arc::clone(&peaks), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for pid in &pids {
                        if let (Some((rss, virt)), Ok(mut peaks)) = (peaks_kib(*pid), peaks.lock())
                        {
                            let peak = peaks.entry(*pid).or_default();
                            *peak = (peak.0.max(rss), peak.1.max(virt));
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        Self {
            peaks,
            stop,
            thread: Some(thread),
        }
    }

    fn peak(&self, pid: u32) -> Option<(u64, u64)> {
        self.peaks.lock().ok()?.get(&pid).copied()
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The text of one service's logs, from the pipeline's log tails (every line of every start).
fn service_log(pipeline: &Pipeline, service: Service) -> String {
    let label = match service {
        Service::Producer => "producer",
        Service::Inventory => "inventory",
        Service::Analytics => "analytics",
    };
    pipeline
        .log_tails(usize::MAX)
        .split("----- ")
        .filter(|section| section.starts_with(&format!("{label}-")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_refuses_hostile_answers_in_bounded_memory_then_works() {
    let _slot = exclusive().await;
    let broker = HostileBroker::start(Storage::Memory);
    for (_, client) in SERVICES {
        for hostility in [
            Hostility::OversizedCount,
            Hostility::TruncatedBody,
            Hostility::LengthPastMaximum,
            Hostility::CutOff,
        ] {
            broker.plan(client, API_VERSIONS, hostility);
        }
        broker.plan(client, METADATA, Hostility::OversizedCount);
    }
    for (client, api_key, hostility, _) in LATER_HOSTILITIES {
        broker.plan(client, api_key, hostility);
    }
    let planned = broker.pending();

    let mut pipeline = Pipeline::create(&broker.bootstrap(), "hostile", PARTITIONS).await;
    pipeline.set(Service::Producer, "MODE", "burst");
    pipeline.set(Service::Producer, "TOTAL_EVENTS", ORDERS);
    pipeline.set(Service::Producer, "BURST_SIZE", ORDERS);
    pipeline.start(Service::Analytics);
    pipeline.start(Service::Inventory);
    pipeline.start(Service::Producer);
    let pids: Vec<(Service, u32)> = SERVICES
        .iter()
        .map(|(service, _)| (*service, pipeline.pid(*service)))
        .collect();
    let sampler = RssSampler::start(pids.iter().map(|(_, pid)| *pid).collect());

    // Recovery: once the real broker answers, every order reaches its one outcome.
    pipeline.reconcile(LIMIT, ORDERS, 0).await;

    let delivered = broker.delivered();
    assert_eq!(
        broker.pending(),
        0,
        "every hostile answer was sent ({} of {planned}): {delivered:?}",
        delivered.len()
    );
    for (service, pid) in pids {
        let (rss, virt) = sampler.peak(pid).expect("the service's memory was sampled");
        eprintln!(
            "{service:?}: peak RSS {} MiB, peak address space {} MiB",
            rss / 1024,
            virt / 1024
        );
        assert!(
            rss <= PEAK_RSS_LIMIT_KIB,
            "{service:?}'s resident set peaked at {rss} KiB (limit {PEAK_RSS_LIMIT_KIB} KiB)"
        );
        assert!(
            virt <= PEAK_VIRTUAL_LIMIT_KIB,
            "{service:?} reserved up to {virt} KiB of address space (limit {PEAK_VIRTUAL_LIMIT_KIB} KiB)"
        );
        let log = service_log(&pipeline, service);
        for expected in [
            "ApiVersionsResponse.api_keys claims 4294967294 elements",
            "but only",
            "a frame length prefix of 2147483647 bytes (accepted: 4 to 104857600)",
            "the stream ended after",
            "MetadataResponse.brokers claims",
        ]
        .into_iter()
        .chain(
            LATER_HOSTILITIES
                .iter()
                .filter(|(client, ..)| SERVICES.contains(&(service, *client)))
                .map(|(.., says)| *says),
        ) {
            assert!(
                log.contains(expected),
                "{service:?}'s log says {expected:?}:\n{log}"
            );
        }
    }
}
