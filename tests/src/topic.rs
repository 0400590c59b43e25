//! Reading a whole topic back, as a verifying peer would: every partition from offset 0 up to
//! the high watermark the broker reports, through rskafka rather than our own fetcher, so a bug
//! in our read path cannot hide itself in the check.
//!
//! It owns the read loop only; what a test counts or asserts stays in the test.

use std::time::Duration;

use rskafka::client::partition::UnknownTopicHandling;
use rskafka::record::RecordAndOffset;
use shared::settings::ConnectionSettings;

/// Every record of `partitions` partitions of `topic`, each with its partition, in offset order
/// per partition.
pub async fn read_all(
    settings: &ConnectionSettings,
    topic: &str,
    partitions: i32,
) -> Vec<(i32, RecordAndOffset)> {
    let client = shared::connect::data_client(settings, Duration::from_secs(30))
        .await
        .expect("data client");
    let mut records = Vec::new();
    for partition in 0..partitions {
        let partition_client = client
            .partition_client(topic, partition, UnknownTopicHandling::Retry)
            .await
            .expect("partition client");
        let mut offset = 0;
        loop {
            let (batch, high_watermark) = partition_client
                .fetch_records(offset, 1..50_000_000, 100)
                .await
                .expect("fetch");
            let start = offset;
            // A compressed batch comes whole, so records before the position come again.
            for record in batch.into_iter().filter(|r| r.offset >= start) {
                offset = record.offset + 1;
                records.push((partition, record));
            }
            if offset >= high_watermark {
                break;
            }
        }
    }
    records
}
