//! Benchmark helper for `scripts/bench-rebalance.sh`: one plain group member that measures,
//! per partition, the longest gap between consecutive records it consumed.
//!
//! It reads commands on stdin: `mark` starts the measured window (gaps so far are forgotten
//! and the partitions held now are the candidates), `report` prints one JSON line with the
//! longest gap of every candidate still held (the partitions that did not move to another
//! member, whether or not they were revoked and given back in between) and exits. It prints `{"assigned": [...]}` (the full set)
//! after every change, so the script knows when the group has settled.
//!
//! Usage: bench_rebalance_member BOOTSTRAP TOPIC GROUP STRATEGY

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use shared::group::{ConsumerEvent, GroupConfig, GroupConsumer, OffsetReset};
use shared::settings::ConnectionSettings;
use tokio::time::Instant;

#[derive(Default)]
struct Gaps {
    held: BTreeSet<i32>,
    /// Held at the mark; those still held at the report did not move (an eager member may
    /// have had them revoked and assigned back in between).
    unmoved: BTreeSet<i32>,
    last_record: BTreeMap<i32, Instant>,
    longest: BTreeMap<i32, Duration>,
    marked: bool,
}

impl Gaps {
    fn record(&mut self, partition: i32, at: Instant) {
        if let Some(previous) = self.last_record.insert(partition, at)
            && self.marked
        {
            let gap = at - previous;
            if gap > Duration::from_millis(50) {
                // On stderr, to see where a pause comes from (the script keeps it on request).
                eprintln!("gap {gap:?} on partition {partition}");
            }
            let longest = self.longest.entry(partition).or_default();
            *longest = (*longest).max(gap);
        }
    }

    fn mark(&mut self) {
        self.marked = true;
        self.longest.clear();
        self.unmoved = self.held.clone();
    }

    fn report(&self) -> serde_json::Value {
        let gaps: serde_json::Map<String, serde_json::Value> = self
            .unmoved
            .intersection(&self.held)
            .map(|p| {
                let ms = self
                    .longest
                    .get(p)
                    .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
                (p.to_string(), serde_json::json!((ms * 10.0).round() / 10.0))
            })
            .collect();
        serde_json::json!({ "unmoved_gaps_ms": gaps })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, topic, group, strategy] = args.as_slice() else {
        return Err("usage: bench_rebalance_member BOOTSTRAP TOPIC GROUP STRATEGY".into());
    };
    let settings = ConnectionSettings::plaintext(vec![bootstrap.clone()], "bench-rebalance");
    let mut config = GroupConfig::new(group.clone(), vec![topic.clone()]);
    config.auto_offset_reset = OffsetReset::Latest;
    config.assignors = vec![strategy.clone()];
    config.session_timeout = Duration::from_secs(10);
    config.heartbeat_interval = Duration::from_millis(500);
    // The same fetch wait as the librdkafka row (fetch.wait.max.ms=20): Nisshi never wakes a
    // parked fetch on produce.
    config.fetch_max_wait = Duration::from_millis(20);
    config.auto_commit_interval = Duration::from_millis(500);
    let mut consumer = GroupConsumer::start(&settings, config, Duration::from_secs(30)).await?;
    // Stdin on a thread of its own (the workspace's tokio has no io-std): one command a line.
    let (command_tx, mut commands) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if command_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut gaps = Gaps::default();
    loop {
        tokio::select! {
            line = commands.recv() => match line.as_deref().map(str::trim) {
                Some("mark") => gaps.mark(),
                Some("report") | None => {
                    println!("{}", gaps.report());
                    break;
                }
                Some(_) => {}
            },
            event = consumer.next() => match event {
                None => break,
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(ConsumerEvent::Records(batch))) => {
                    let at = Instant::now();
                    if !batch.records.is_empty() {
                        gaps.record(batch.partition.partition, at);
                    }
                }
                Some(Ok(ConsumerEvent::Assigned(partitions))) => {
                    eprintln!("assigned {partitions:?}");
                    gaps.held.extend(partitions.iter().map(|p| p.partition));
                    println!("{}", serde_json::json!({ "assigned": gaps.held }));
                }
                Some(Ok(ConsumerEvent::Revoked { partitions, .. })) => {
                    eprintln!("revoked {partitions:?}");
                    // The clock of a partition keeps running: an eager member gets it back
                    // after the pause, and that pause is what is measured.
                    for p in &partitions {
                        gaps.held.remove(&p.partition);
                    }
                    println!("{}", serde_json::json!({ "assigned": gaps.held }));
                }
                Some(Ok(ConsumerEvent::Stuck { partition, error })) => {
                    eprintln!("stuck {partition}: {error}");
                }
            },
        }
    }
    consumer.close().await?;
    Ok(())
}
