//! A record batch that does not decode, written into one partition of the order topic while
//! the pipeline runs: the inventory consumer and analytics each pause that partition there and
//! say so plainly — a stuck-partition count of 1 in analytics' `/metrics` (JSON and
//! Prometheus) naming topic, partition and offset, and one error line in the inventory's log —
//! while every other partition keeps flowing to the end.
//!
//! The bad batch is one Nisshi accepts and stores (it checks CRCs and decompresses on produce,
//! so a corrupt frame is refused with CORRUPT_MESSAGE or INVALID_RECORD): an lz4 batch of
//! a few hundred KiB on the wire that expands past the 64 MiB a consumer will decompress,
//! the decompression-bomb guard. Sent as a raw Produce request, since no producer would.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use bytes::Bytes;
use integration_tests::pipeline::{Pipeline, Service, count, exclusive};
use integration_tests::shared_broker;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use shared::group::coordinator::Coordinator;
use shared::producer::{Compression, OutgoingRecord, batch};

const ORDERS: u64 = 8_000;
const PARTITIONS: i32 = 6;
const STUCK: i32 = 2;
const LIMIT: Duration = Duration::from_secs(180);
/// What a consumer decompresses of one batch at most (`MAX_DECOMPRESSED_BATCH` in
/// shared/src/group/fetch/batch.rs, private there).
const MAX_DECOMPRESSED_BATCH: usize = 64 << 20;

/// An lz4 batch that is valid and small on the wire but expands past what a consumer will
/// decompress (`MAX_DECOMPRESSED_BATCH`): one record of zeros a little larger than that.
fn undecodable_batch() -> Bytes {
    let zeros = vec![0u8; MAX_DECOMPRESSED_BATCH + (1 << 20)];
    let record = OutgoingRecord {
        key: Some(b"oversized".to_vec()),
        value: zeros,
        headers: Vec::new(),
        timestamp: chrono::Utc::now(),
        partition: Some(STUCK),
    };
    let mut encoded = batch::encode(vec![record], Compression::Lz4).expect("encodes");
    batch::stamp(&mut encoded, None, -1);
    encoded.freeze()
}

/// Writes the batch with a raw Produce request; returns the offset the broker gave it.
async fn produce_raw(topic: &str, records: Bytes) -> i64 {
    let settings = shared_broker().connection_settings("stuck-writer");
    let mut connection = shared::connect::broker_connection(&settings, Duration::from_secs(30))
        .await
        .expect("a connection");
    let version = connection
        .negotiate::<ProduceRequest>(3..=9)
        .expect("Produce v3-9");
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(STUCK)
                        .with_records(Some(records)),
                ]),
        ]);
    let response = connection.send(version, &request).await.expect("answered");
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, 0, "the broker stores the batch");
    partition.base_offset
}

/// `GET path` from analytics; the body.
fn http_get(port: u16, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("analytics listens");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// The inventory group's committed offset per partition, and the order topic's end offsets.
async fn committed_and_ends(pipeline: &Pipeline) -> Vec<(i64, i64)> {
    let settings = shared_broker().connection_settings("stuck-checker");
    let client = shared::connect::data_client(&settings, Duration::from_secs(30))
        .await
        .expect("client");
    let mut coordinator = Coordinator::new(
        &settings,
        &pipeline.names.inventory_group,
        Duration::from_secs(30),
    );
    let (error, committed) = coordinator
        .committed(&vec![(
            pipeline.names.orders.clone(),
            (0..PARTITIONS).collect(),
        )])
        .await
        .expect("OffsetFetch");
    assert_eq!(error, 0);
    let mut figures = vec![(0, 0); PARTITIONS as usize];
    for (_, offset) in committed {
        figures[offset.partition as usize].0 = offset.offset.max(0);
    }
    for (partition, figure) in figures.iter_mut().enumerate() {
        let partition_client = client
            .partition_client(
                &pipeline.names.orders,
                partition as i32,
                rskafka::client::partition::UnknownTopicHandling::Retry,
            )
            .await
            .expect("partition client");
        figure.1 = partition_client
            .get_offset(rskafka::client::partition::OffsetAt::Latest)
            .await
            .expect("end offset");
    }
    figures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_batch_stops_its_partition_visibly_and_the_others_flow_on() {
    let _slot = exclusive().await;
    let mut pipeline = Pipeline::create(&shared_broker().bootstrap(), "stuck", PARTITIONS).await;
    pipeline.set(Service::Producer, "MODE", "steady");
    pipeline.set(Service::Producer, "RATE_PER_SEC", 1_000);
    pipeline.set(Service::Producer, "TOTAL_EVENTS", ORDERS);
    pipeline.start(Service::Analytics);
    pipeline.start(Service::Inventory);
    pipeline.start(Service::Producer);
    pipeline
        .metrics_until("the first outcomes", LIMIT, |m| {
            count(m, "/processed_order_count") >= 1_000
        })
        .await;

    let bad_offset = produce_raw(&pipeline.names.orders, undecodable_batch()).await;
    let stuck_at = Instant::now();
    let metrics = pipeline
        .metrics_until("both consumers to report the stuck partition", LIMIT, |m| {
            count(m, "/stuck_partitions") == 1
                && count(m, "/pipeline/inventory_group/stuck_partitions") == 1
        })
        .await;
    for stuck in [
        &metrics["stuck"][0],
        &metrics["pipeline"]["inventory_group"]["stuck"][0],
    ] {
        assert_eq!(stuck["topic"], pipeline.names.orders.as_str(), "{stuck}");
        assert_eq!(stuck["partition"], STUCK, "{stuck}");
        assert_eq!(stuck["offset"], bad_offset, "{stuck}");
        assert!(
            stuck["error"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase()
                .contains("lz4"),
            "{stuck}"
        );
    }
    let prometheus = http_get(pipeline.http_port, "/metrics/prometheus");
    for line in [
        "analytics_stuck_partitions 1",
        "analytics_pipeline_inventory_stuck_partitions 1",
    ] {
        assert!(
            prometheus.lines().any(|l| l == line),
            "no `{line}` in:\n{prometheus}"
        );
    }

    // Every other partition reaches its end; the stuck one is committed up to the bad batch.
    assert!(pipeline.wait_exit(Service::Producer, LIMIT).success());
    let started = Instant::now();
    loop {
        let figures = committed_and_ends(&pipeline).await;
        let flowing = figures
            .iter()
            .enumerate()
            .all(|(p, (committed, end))| p as i32 == STUCK || committed == end);
        if flowing && figures[STUCK as usize].0 == bad_offset {
            break;
        }
        if started.elapsed() > LIMIT {
            pipeline.fail(&format!("(committed, end) per partition: {figures:?}"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(pipeline.is_running(Service::Inventory));
    assert!(pipeline.is_running(Service::Analytics));

    // Said plainly in the log, naming topic, partition and offset — and not in a hot loop:
    // at most once a minute per partition.
    let logs = pipeline.log_tails(100_000);
    let inventory_log = logs
        .split("----- ")
        .find(|section| section.starts_with("inventory-1.log"))
        .unwrap_or_default();
    let stuck_lines: Vec<&str> = inventory_log
        .lines()
        .filter(|line| line.contains("does not decode"))
        .collect();
    let allowed = 1 + stuck_at.elapsed().as_secs() / 60;
    assert!(
        !stuck_lines.is_empty() && stuck_lines.len() as u64 <= allowed,
        "{} lines in {:?}: {stuck_lines:?}",
        stuck_lines.len(),
        stuck_at.elapsed()
    );
    let line = stuck_lines[0];
    let partition = format!("{}-{STUCK}", pipeline.names.orders);
    assert!(
        line.contains(&partition) && line.contains(&bad_offset.to_string()),
        "{line}"
    );
    assert!(pipeline.stop(Service::Inventory, LIMIT).success());
    assert!(pipeline.stop(Service::Analytics, LIMIT).success());
}
