//! One inventory run: make sure the topics exist (creating them with `CREATE_TOPICS=1`), join
//! the group, restore each assigned partition's stock, hand its orders to its worker, drain
//! workers before their partitions leave, and log a summary every `REPORT_INTERVAL_SEC`.
//!
//! The loop alone owns the group consumer and the workers' channels; a revocation is only
//! acknowledged (by polling again) once the leaving partitions' workers have committed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use shared::admin::{TopicAdmin, TopicSpec};
use shared::group::fetch::{FetchSettings, Fetcher};
use shared::group::{ConsumerEvent, GroupConfig, GroupConsumer, OffsetReset, TopicPartition};
use shared::producer::Producer;
use shared::shutdown::Shutdown;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::rules::FailureModel;
use crate::settings::{InventorySettings, OffsetReset as ConfiguredReset};
use crate::state;
use crate::worker::{Outputs, Stats, Worker};

const CONNECT_DEADLINE: Duration = Duration::from_secs(30);

struct Running {
    batches: mpsc::Sender<shared::group::RecordBatch>,
    task: JoinHandle<anyhow::Result<()>>,
}

pub async fn run(settings: InventorySettings, shutdown: Shutdown) -> anyhow::Result<()> {
    let mut admin = TopicAdmin::connect(&settings.connection, CONNECT_DEADLINE).await?;
    let topics = [
        settings.order_topic.as_str(),
        settings.inventory_topic.as_str(),
        settings.dlq_topic.as_str(),
        settings.state_topic.as_str(),
    ];
    if settings.create_topics {
        let orders = admin
            .wait_for_topics(&[&settings.order_topic], &settings.topic_wait)
            .await
            .context("waiting for the order topic")?;
        let partitions = orders.get(&settings.order_topic).copied().unwrap_or(6);
        let rf = settings.replication_factor;
        admin
            .create_topics(&[
                TopicSpec::new(&settings.inventory_topic, partitions, rf),
                TopicSpec::new(&settings.dlq_topic, partitions, rf),
                TopicSpec::new(&settings.state_topic, partitions, rf)
                    .with_config("cleanup.policy", "compact"),
            ])
            .await
            .context("creating the inventory topics")?;
    }
    let found = tokio::select! {
        found = admin.wait_for_topics(&topics, &settings.topic_wait) => found.context("waiting for topics")?,
        _ = shutdown.cancelled() => return Ok(()),
    };
    if !settings.topic_wait.skip {
        let orders = found.get(&settings.order_topic).copied().unwrap_or(0);
        let changelog = found.get(&settings.state_topic).copied().unwrap_or(0);
        if changelog < orders {
            bail!(
                "{} has {changelog} partitions but {} has {orders}: the changelog must be co-partitioned with the orders",
                settings.state_topic,
                settings.order_topic
            );
        }
    }

    let connection = &settings.connection;
    let producer_config = &settings.producer;
    let producer = |topic: String| async move {
        Producer::new(
            connection,
            &topic,
            producer_config.clone(),
            CONNECT_DEADLINE,
        )
        .await
        .with_context(|| format!("producing to {topic}"))
    };
    let outcomes = producer(settings.inventory_topic.clone()).await?;
    let dead_letters = producer(settings.dlq_topic.clone()).await?;
    let changelog = producer(settings.state_topic.clone()).await?;

    let mut config = GroupConfig::new(
        settings.group_id.clone(),
        vec![settings.order_topic.clone()],
    )
    .with_session_timeout(settings.session_timeout)
    .with_fetch(&settings.fetch);
    config.enable_auto_commit = false;
    config.auto_offset_reset = match settings.auto_offset_reset {
        ConfiguredReset::Earliest => OffsetReset::Earliest,
        ConfiguredReset::Latest => OffsetReset::Latest,
        ConfiguredReset::None => OffsetReset::None,
    };
    // The changelog is read with a fetcher of its own (no group: every partition is read from
    // its start on each assignment), so restoring never competes with the orders' budget.
    let changelog_reader = Fetcher::start(
        &settings.connection,
        shared::connect::broker_connection(&settings.connection, CONNECT_DEADLINE).await?,
        FetchSettings {
            reset: OffsetReset::Earliest,
            ..config.fetch_settings()
        },
    );
    let mut consumer = GroupConsumer::start(&settings.connection, config, CONNECT_DEADLINE).await?;
    let stats = Arc::new(Stats::default());
    let outputs = Outputs {
        outcomes,
        dead_letters,
        changelog,
        committer: consumer.committer(),
        stats: Arc::clone(&stats),
        failures: FailureModel {
            fail_rate: settings.fail_rate,
            max_retries: settings.max_retries,
            backoff: settings.retry_backoff,
            seed: settings.fail_seed,
        },
        throttle: settings.throttle,
        initial_stock: settings.initial_stock,
        restock: settings.restock,
    };
    let mut workers: HashMap<TopicPartition, Running> = HashMap::new();
    let mut last_report = Instant::now();
    let outcome: anyhow::Result<()> = loop {
        let event = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break Ok(()),
            event = consumer.next() => event,
        };
        match event {
            None => break Ok(()),
            Some(Err(e)) => break Err(anyhow::Error::new(e).context("group member")),
            Some(Ok(ConsumerEvent::Assigned(partitions))) => {
                let committed: Vec<(i32, i64)> = partitions
                    .iter()
                    .map(|p| {
                        (
                            p.partition,
                            consumer.positions().get(p).copied().unwrap_or(0),
                        )
                    })
                    .collect();
                let mut stocks =
                    state::restore(&changelog_reader, &settings.state_topic, &committed)
                        .await
                        .map_err(|e| anyhow::anyhow!("restoring stock: {e}"))?;
                for partition in partitions {
                    let stock = stocks.remove(&partition.partition).unwrap_or_default();
                    tracing::info!(%partition, items = stock.len(), "stock restored");
                    let (batches, receiver) = mpsc::channel(2);
                    let worker = Worker::new(partition.clone(), stock, outputs.clone());
                    let task = tokio::spawn(worker.run(receiver));
                    workers.insert(partition, Running { batches, task });
                }
            }
            Some(Ok(ConsumerEvent::Revoked { partitions, .. })) => {
                for partition in partitions {
                    if let Some(running) = workers.remove(&partition) {
                        drop(running.batches);
                        running.task.await.context("worker panicked")??;
                    }
                }
            }
            Some(Ok(ConsumerEvent::Records(batch))) => {
                let partition = batch.partition.clone();
                let Some(running) = workers.get(&partition) else {
                    continue;
                };
                if running.batches.send(batch).await.is_err()
                    && let Some(running) = workers.remove(&partition)
                {
                    running.task.await.context("worker panicked")??;
                    bail!("the worker of {partition} stopped");
                }
            }
        }
        if last_report.elapsed() >= settings.report_interval {
            last_report = Instant::now();
            report(&stats, consumer.lag().values().sum());
        }
    };
    // Finish what was handed out, commit it, then leave.
    let mut worker_errors = Vec::new();
    for (_, running) in workers.drain() {
        drop(running.batches);
        match running.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => worker_errors.push(e),
            Err(e) => worker_errors.push(anyhow::Error::new(e)),
        }
    }
    report(&stats, consumer.lag().values().sum());
    consumer.close().await?;
    if let Some(e) = worker_errors.into_iter().next() {
        return Err(e);
    }
    outcome
}

fn report(stats: &Stats, lag: i64) {
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    tracing::info!(
        processed = load(&stats.processed),
        reserved = load(&stats.reserved),
        rejected = load(&stats.rejected),
        failed = load(&stats.failed),
        restocked = load(&stats.restocked),
        retries = load(&stats.retries),
        dead_letters = load(&stats.dead_letters),
        malformed = load(&stats.malformed),
        lag,
        "summary"
    );
}
