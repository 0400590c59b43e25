//! Helpers for group tests: topics filled with known records, and group consumers driven in
//! their own task so several members can run side by side while the test observes them.

use std::collections::BTreeSet;
use std::time::Duration;

use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;
use shared::admin::{TopicAdmin, TopicSpec};
use shared::connect;
use shared::group::{
    ConsumerEvent, GroupConfig, GroupConsumer, GroupError, MemberSnapshot, TopicPartition,
};
use shared::settings::ConnectionSettings;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::TestBroker;

/// Creates a topic with `partitions` partitions on `broker`.
pub async fn create_topic(broker: &TestBroker, prefix: &str, partitions: i32) -> String {
    create_topic_at(
        &broker.connection_settings("group-test"),
        prefix,
        partitions,
    )
    .await
}

/// Creates a topic with `partitions` partitions through `settings` (e.g. a fault proxy).
pub async fn create_topic_at(
    settings: &ConnectionSettings,
    prefix: &str,
    partitions: i32,
) -> String {
    let topic = crate::unique_name(prefix);
    TopicAdmin::connect(settings, Duration::from_secs(10))
        .await
        .expect("admin connects")
        .create_topics(&[TopicSpec::new(&topic, partitions, 1)])
        .await
        .expect("topic created");
    topic
}

/// Writes `per_partition` records to each partition, values `"<tag>-p<partition>-<i>"`;
/// returns the values written.
pub async fn produce(
    broker: &TestBroker,
    topic: &str,
    partitions: i32,
    per_partition: usize,
    tag: &str,
) -> BTreeSet<String> {
    let client = connect::data_client(
        &broker.connection_settings("group-test"),
        Duration::from_secs(10),
    )
    .await
    .expect("data client");
    let mut written = BTreeSet::new();
    for partition in 0..partitions {
        let partition_client = client
            .partition_client(topic, partition, UnknownTopicHandling::Retry)
            .await
            .expect("partition client");
        let values: Vec<String> = (0..per_partition)
            .map(|i| format!("{tag}-p{partition}-{i}"))
            .collect();
        for chunk in values.chunks(500) {
            let records = chunk
                .iter()
                .map(|value| Record {
                    key: None,
                    value: Some(value.clone().into_bytes()),
                    headers: Default::default(),
                    timestamp: chrono::Utc::now(),
                })
                .collect();
            partition_client
                .produce(records, Compression::NoCompression)
                .await
                .expect("produce");
        }
        written.extend(values);
    }
    written
}

/// A test-friendly group config: short timeouts so expiry tests finish quickly.
pub fn test_config(group: &str, topic: &str) -> GroupConfig {
    let mut config = GroupConfig::new(group, vec![topic.to_owned()]);
    config.session_timeout = Duration::from_secs(6);
    config.heartbeat_interval = Duration::from_millis(500);
    config.max_poll_interval = Duration::from_secs(20);
    config.auto_offset_reset = shared::group::OffsetReset::Earliest;
    config.auto_commit_interval = Duration::from_millis(200);
    // Nisshi never wakes a parked fetch on produce: a short wait keeps records flowing.
    config.fetch_max_wait = Duration::from_millis(20);
    config
}

/// What a driven consumer reports.
#[derive(Debug)]
pub enum Observed {
    Assigned(Vec<TopicPartition>),
    Revoked(Vec<TopicPartition>),
    Record {
        partition: TopicPartition,
        offset: i64,
        value: String,
    },
    Failed(String),
}

/// How a driven consumer stops.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// `close()`: commit, and LeaveGroup for dynamic members.
    Close,
    /// Vanish as a killed process would: no commit, no LeaveGroup, no more heartbeats.
    Crash,
}

/// A consumer running in its own task.
pub struct DrivenConsumer {
    pub events: mpsc::UnboundedReceiver<Observed>,
    pub snapshot: watch::Receiver<MemberSnapshot>,
    /// While `true` the driver stops polling, as an application stuck in its own work would.
    pub stalled: watch::Sender<bool>,
    stop: Option<oneshot::Sender<Stop>>,
    task: Option<JoinHandle<Result<(), GroupError>>>,
}

impl DrivenConsumer {
    pub async fn start(broker: &TestBroker, config: GroupConfig) -> Self {
        Self::start_with(&broker.connection_settings("group-test"), config).await
    }

    /// Starts a consumer that connects with `settings` (its own client id, or a proxy).
    pub async fn start_with(settings: &ConnectionSettings, config: GroupConfig) -> Self {
        let consumer = GroupConsumer::start(settings, config, Duration::from_secs(10))
            .await
            .expect("consumer starts");
        let snapshot = consumer.watch_snapshot();
        let (events_tx, events) = mpsc::unbounded_channel();
        let (stop_tx, mut stop_rx) = oneshot::channel();
        let (stalled, mut stall_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut consumer = consumer;
            loop {
                if *stall_rx.borrow_and_update() {
                    tokio::select! {
                        _ = stall_rx.changed() => continue,
                        stop = &mut stop_rx => {
                            let _ = stop;
                            consumer.abort();
                            return Ok(());
                        }
                    }
                }
                tokio::select! {
                    _ = stall_rx.changed() => continue,
                    stop = &mut stop_rx => {
                        return match stop.unwrap_or(Stop::Close) {
                            Stop::Close => consumer.close().await,
                            Stop::Crash => { consumer.abort(); Ok(()) }
                        };
                    }
                    event = consumer.next() => {
                        let observed = match event {
                            None => return Ok(()),
                            Some(Err(e)) => {
                                let _ = events_tx.send(Observed::Failed(e.to_string()));
                                return Err(e);
                            }
                            Some(Ok(ConsumerEvent::Assigned(p))) => vec![Observed::Assigned(p)],
                            Some(Ok(ConsumerEvent::Revoked { partitions, .. })) => vec![Observed::Revoked(partitions)],
                            Some(Ok(ConsumerEvent::Records(batch))) => batch
                                .records
                                .into_iter()
                                .map(|r| Observed::Record {
                                    partition: batch.partition.clone(),
                                    offset: r.offset,
                                    value: String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned(),
                                })
                                .collect(),
                            // A stuck partition shows as its records not arriving.
                            Some(Ok(ConsumerEvent::Stuck { .. })) => Vec::new(),
                        };
                        for item in observed {
                            let _ = events_tx.send(item);
                        }
                    }
                }
            }
        });
        Self {
            events,
            snapshot,
            stalled,
            stop: Some(stop_tx),
            task: Some(task),
        }
    }

    /// Waits (up to `limit`, a safety net) until the member's snapshot satisfies `condition`.
    pub async fn wait_for(
        &mut self,
        limit: Duration,
        condition: impl Fn(&MemberSnapshot) -> bool,
    ) -> MemberSnapshot {
        let outcome = tokio::time::timeout(limit, self.snapshot.wait_for(|s| condition(s)))
            .await
            .map(|waited| waited.map(|snapshot| snapshot.clone()));
        match outcome {
            Ok(Ok(snapshot)) => snapshot,
            _ => panic!(
                "condition not reached within {limit:?}; last snapshot: {:?}",
                self.snapshot.borrow()
            ),
        }
    }

    /// Collects events until a revocation arrives; returns (partitions, records seen before).
    pub async fn revoked(&mut self, limit: Duration) -> Vec<TopicPartition> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Observed::Revoked(partitions))) => return partitions,
                Ok(Some(Observed::Failed(e))) => panic!("consumer failed: {e}"),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => panic!("no revocation within {limit:?}"),
            }
        }
    }

    /// Collects record values until `count` have arrived (up to `limit`, a safety net).
    pub async fn records(
        &mut self,
        count: usize,
        limit: Duration,
    ) -> Vec<(TopicPartition, i64, String)> {
        let mut records = Vec::new();
        let deadline = tokio::time::Instant::now() + limit;
        while records.len() < count {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Observed::Record {
                    partition,
                    offset,
                    value,
                })) => records.push((partition, offset, value)),
                Ok(Some(Observed::Failed(e))) => panic!("consumer failed: {e}"),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    panic!("only {} of {count} records within {limit:?}", records.len())
                }
            }
        }
        records
    }

    /// Every record value that arrived so far, without waiting.
    pub fn drain_records(&mut self) -> Vec<String> {
        let mut values = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            if let Observed::Record { value, .. } = event {
                values.push(value);
            }
        }
        values
    }

    /// Waits for the consumer's task to end with an error and returns its message.
    pub async fn failure(&mut self, limit: Duration) -> String {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Observed::Failed(e))) => return e,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => panic!("the consumer did not fail within {limit:?}"),
            }
        }
    }

    pub async fn stop(mut self, how: Stop) -> Result<(), GroupError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(how);
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}
