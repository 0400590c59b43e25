//! One producer run: create the topic if asked, generate orders at the configured pace, report
//! progress, then flush and summarise with exact counts.
//!
//! The exit status is the contract: success only when every order sent was acknowledged.
//! Shutdown stops generation, not delivery: what was handed to the producer is flushed first.

use std::time::{Duration, Instant};

use anyhow::Context;
use shared::admin::{TopicAdmin, TopicSpec};
use std::borrow::Cow;

use bytes::Bytes;
use shared::events::ORDER_SCHEMA_VERSION;
use shared::producer::{OutgoingRecord, Producer, ProducerStats};
use shared::settings::LogFormat;
use shared::shutdown::Shutdown;

use crate::generator::OrderGenerator;
use crate::pacing::Pacing;
use crate::settings::ProducerSettings;

const CONNECT_DEADLINE: Duration = Duration::from_secs(30);

/// The final counts of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub stats: ProducerStats,
    pub seconds: f64,
    pub interrupted: bool,
}

impl Summary {
    pub fn all_acknowledged(&self) -> bool {
        self.stats.failed == 0 && self.stats.acknowledged == self.stats.sent
    }

    pub fn print(&self, format: LogFormat) {
        let rate = self.stats.acknowledged as f64 / self.seconds.max(1e-9);
        match format {
            LogFormat::Json => println!(
                "{{\"summary\":\"producer-order\",\"sent\":{},\"acknowledged\":{},\"failed\":{},\"seconds\":{:.3},\"acknowledged_per_sec\":{:.0},\"interrupted\":{}}}",
                self.stats.sent,
                self.stats.acknowledged,
                self.stats.failed,
                self.seconds,
                rate,
                self.interrupted
            ),
            LogFormat::Text => println!(
                "producer-order summary: sent={} acknowledged={} failed={} seconds={:.3} rate={:.0}/s{}",
                self.stats.sent,
                self.stats.acknowledged,
                self.stats.failed,
                self.seconds,
                rate,
                if self.interrupted {
                    " (interrupted)"
                } else {
                    ""
                }
            ),
        }
    }
}

pub async fn run(settings: ProducerSettings, shutdown: Shutdown) -> anyhow::Result<Summary> {
    if settings.create_topics {
        let mut admin = TopicAdmin::connect(&settings.connection, CONNECT_DEADLINE).await?;
        let outcome = admin
            .create_topics(&[TopicSpec::new(
                &settings.order_topic,
                settings.topic_partitions,
                settings.replication_factor,
            )])
            .await
            .context("creating the order topic")?;
        tracing::info!(?outcome, "CREATE_TOPICS=1");
    }
    let producer = Producer::new(
        &settings.connection,
        &settings.order_topic,
        settings.producer.clone(),
        CONNECT_DEADLINE,
    )
    .await
    .context("starting the producer")?;
    tracing::info!(
        topic = %settings.order_topic,
        partitions = producer.partitions(),
        pacing = ?settings.pacing,
        total = settings.total_events,
        "producing orders"
    );
    let started = Instant::now();
    let progress = tokio::spawn(report_progress(
        producer.clone(),
        settings.pacing,
        settings.progress_interval,
        started,
    ));
    let mut generator = OrderGenerator::new(
        settings.seed,
        settings.item_count,
        settings.skew,
        settings.customer_count,
        "EUR",
    );
    let generated = generate(&settings, &producer, &mut generator, &shutdown, started).await;
    let interrupted = shutdown.is_triggered();
    if let Err(e) = &generated {
        tracing::error!(error = %e, "order generation stopped");
    }
    producer.flush().await.context("flushing")?;
    progress.abort();
    Ok(Summary {
        stats: producer.stats(),
        seconds: started.elapsed().as_secs_f64(),
        interrupted,
    })
}

/// Sends orders as the pacing says until the total is reached or shutdown is asked for.
async fn generate(
    settings: &ProducerSettings,
    producer: &Producer,
    generator: &mut OrderGenerator,
    shutdown: &Shutdown,
    started: Instant,
) -> anyhow::Result<()> {
    let total = if settings.total_events == 0 {
        u64::MAX
    } else {
        settings.total_events
    };
    let mut sent = 0u64;
    match settings.pacing {
        Pacing::Burst { size, pause } => {
            while sent < total && !shutdown.is_triggered() {
                let burst_end = (sent + size).min(total);
                while sent < burst_end && !shutdown.is_triggered() {
                    let chunk = (burst_end - sent).min(CHUNK);
                    send_chunk(producer, generator, chunk).await?;
                    sent += chunk;
                }
                if sent < total {
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
        pacing => {
            while sent < total && !shutdown.is_triggered() {
                let due = pacing.due_by(started.elapsed()).min(total);
                while sent < due && !shutdown.is_triggered() {
                    let chunk = (due - sent).min(CHUNK);
                    send_chunk(producer, generator, chunk).await?;
                    sent += chunk;
                }
                if sent < total {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(1)) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
    }
    Ok(())
}

/// Orders built and handed to the producer together: one hand-over per chunk, not per order.
const CHUNK: u64 = 256;

async fn send_chunk(
    producer: &Producer,
    generator: &mut OrderGenerator,
    count: u64,
) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let schema_version = Bytes::from(ORDER_SCHEMA_VERSION.to_string());
    let mut records = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let order = generator.next_order(now);
        let mut value = Vec::with_capacity(320);
        serde_json::to_writer(&mut value, &order).context("encoding an order")?;
        let headers = vec![
            (
                Cow::Borrowed("event-type"),
                Bytes::from_static(b"order.created"),
            ),
            (Cow::Borrowed("schema-version"), schema_version.clone()),
        ];
        records.push(OutgoingRecord {
            key: Some(order.item_id.into_bytes()),
            value,
            headers,
            timestamp: order.created_at,
            partition: None,
        });
    }
    producer.send_all_counted(records).await?;
    Ok(())
}

async fn report_progress(producer: Producer, pacing: Pacing, every: Duration, started: Instant) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    let mut last = (Instant::now(), 0u64);
    loop {
        ticker.tick().await;
        let stats = producer.stats();
        let now = Instant::now();
        let rate = (stats.acknowledged - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
        last = (now, stats.acknowledged);
        tracing::info!(
            sent = stats.sent,
            acknowledged = stats.acknowledged,
            failed = stats.failed,
            rate = format!("{rate:.0}/s"),
            target = pacing
                .rate_at(started.elapsed())
                .map_or_else(|| "burst".to_owned(), |r| format!("{r:.0}/s")),
            elapsed = format!("{:.1}s", started.elapsed().as_secs_f64()),
            "progress"
        );
    }
}
