//! Benchmark helper: one group member reads N records from a topic and prints one JSON line
//! with the rate and peak RSS. `scripts/bench-group.sh` runs it beside a confluent-kafka
//! consumer on the same topic and prints the table.
//!
//! Usage: bench_group_consume BOOTSTRAP TOPIC GROUP COUNT

use std::time::{Duration, Instant};

use shared::group::{ConsumerEvent, GroupConfig, GroupConsumer, OffsetReset};
use shared::settings::ConnectionSettings;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, topic, group, count] = args.as_slice() else {
        return Err("usage: bench_group_consume BOOTSTRAP TOPIC GROUP COUNT".into());
    };
    let wanted: usize = count.parse()?;
    let settings = ConnectionSettings::plaintext(vec![bootstrap.clone()], "bench");
    let mut config = GroupConfig::new(group.clone(), vec![topic.clone()]);
    config.auto_offset_reset = OffsetReset::Earliest;
    config.enable_auto_commit = false;
    // Timed from the start, join included, as the peer's figure is.
    let started = Instant::now();
    let mut consumer = GroupConsumer::start(&settings, config, Duration::from_secs(30)).await?;
    let mut batches = 0usize;
    let mut consumed = 0usize;
    let mut bytes = 0usize;
    while consumed < wanted {
        match consumer.next().await {
            Some(Ok(ConsumerEvent::Records(batch))) => {
                batches += 1;
                consumed += batch.records.len();
                bytes += batch
                    .records
                    .iter()
                    .map(|r| r.value.as_ref().map_or(0, |v| v.len()))
                    .sum::<usize>();
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err("the consumer stopped".into()),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    consumer.commit_positions().await?;
    consumer.close().await?;
    println!(
        "{{\"records\": {consumed}, \"batches\": {batches}, \"bytes\": {bytes}, \"seconds\": {elapsed:.3}, \"records_per_sec\": {:.0}, \"peak_rss_kib\": {}}}",
        consumed as f64 / elapsed.max(1e-9),
        peak_rss_kib()
    );
    Ok(())
}
