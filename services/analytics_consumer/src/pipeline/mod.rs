//! The ripple view: the whole pipeline as analytics sees it from outside — the producer's
//! measured rate (end offsets of the order topic), the inventory group's lag measured the way
//! Kafka tools measure it (its committed offsets against the end offsets), its members and
//! rebalances and every service's settings (from the status topic), and the desired live
//! settings (from the control topic).
//!
//! One task owns all of it and publishes an immutable, pre-rendered [`PipelineView`] once a
//! second; the HTTP handlers only read it. It never consumes as a group member (the control
//! and status topics are read whole, as plain consumers) and it never interprets a service's
//! settings beyond the names the `/metrics` contract needs.

mod book;
pub mod history;
mod settings;
pub mod writer;

pub use book::Catalogue;
pub use settings::{PipelineSettings, variables};

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rskafka::client::Client;
use serde::Serialize;
use serde_json::{Value, json};
use shared::control::tail::{self, TailEvent};
use shared::control::{ControlRecord, StatusPart, StatusRecord, StuckPartition};
use shared::group::TopicPartition;
use shared::group::coordinator::Coordinator;
use shared::group::fetch::{FetchSettings, Fetcher};
use shared::settings::ConnectionSettings;
use shared::shutdown::Shutdown;
use tokio::sync::{mpsc, watch};

use crate::http::Published;
use book::StatusBook;
use history::History;

pub const PRODUCER: &str = "producer-order";
pub const INVENTORY: &str = "inventory-consumer";
pub const ANALYTICS: &str = "analytics-consumer";

/// How often the view is refreshed (and the producer's rate sampled): twice a second, so a
/// rate change shows within about a second rather than two.
const REFRESH: Duration = Duration::from_millis(500);
/// The producer's rate is measured over the last second (the `/metrics` contract allows 2 s).
const RATE_SPAN: Duration = Duration::from_secs(1);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The `pipeline` object of `/metrics`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PipelineFigures {
    pub producer: ProducerFigures,
    pub inventory_group: GroupFigures,
    /// service → setting → {value, source}.
    pub settings: BTreeMap<String, Value>,
    /// service → {instances, refused, control_unreadable}.
    pub services: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ProducerFigures {
    pub mode: Option<String>,
    pub target_rate: Option<f64>,
    /// Orders per second arriving in the order topic, over the last second (at most 2 s).
    pub actual_rate: f64,
    pub paused: bool,
    pub acked_total: u64,
    pub instances: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupFigures {
    pub group_id: String,
    pub state: String,
    pub lag_total: i64,
    pub lag: Vec<PartitionLag>,
    pub members: Vec<book::MemberEntry>,
    pub rebalances: Vec<book::RebalanceEntry>,
    /// Partitions the members paused on a batch that does not decode, and that list.
    pub stuck_partitions: usize,
    pub stuck: Vec<StuckPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub lag: i64,
}

/// What the handlers read: figures, their JSON, the history, and what `/control` needs.
#[derive(Debug, Default)]
pub struct PipelineView {
    pub figures: PipelineFigures,
    pub json: bytes::Bytes,
    pub history_json: bytes::Bytes,
    /// service → setting → desired value (the control topic).
    pub desired: BTreeMap<String, BTreeMap<String, String>>,
    pub catalogues: BTreeMap<String, Catalogue>,
}

pub type PipelineWatch = watch::Receiver<Arc<PipelineView>>;

/// Starts the view's task; it runs until `shutdown`.
pub fn start(
    connection: ConnectionSettings,
    settings: PipelineSettings,
    order_topic: String,
    metrics: Published,
    shutdown: Shutdown,
) -> (PipelineWatch, writer::ControlWriter) {
    let (view_tx, view) = watch::channel(Arc::new(PipelineView::default()));
    let writer = writer::ControlWriter::new(connection.clone(), settings.topics.control.clone());
    tokio::spawn(async move {
        // Three clients, so three connections: Nisshi answers one request at a time per
        // connection, and an end-offset query queued behind a tail's long-poll fetch would
        // wait for it (docs/broker.md).
        let mut clients = Vec::new();
        while clients.len() < 3 {
            match shared::connect::data_client(&connection, Duration::from_secs(30)).await {
                Ok(client) => clients.push(Arc::new(client)),
                Err(e) => {
                    tracing::warn!(error = %e, "pipeline view: no broker yet; trying again");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(5)) => {}
                        () = shutdown.cancelled() => return,
                    }
                }
            }
        }
        let (Some(client), Some(control_client), Some(status_client)) =
            (clients.pop(), clients.pop(), clients.pop())
        else {
            return;
        };
        let status = tail::follow(
            status_client,
            settings.topics.status.clone(),
            shutdown.clone(),
        );
        let control = tail::follow(
            control_client,
            settings.topics.control.clone(),
            shutdown.clone(),
        );
        let coordinator = Coordinator::new(&connection, &settings.inventory_group, REQUEST_TIMEOUT);
        // End offsets go through a fetcher that reads nothing: it asks each leader once for
        // all its partitions (ListOffsets), not once per partition on a connection each.
        let offsets =
            match shared::connect::broker_connection(&connection, Duration::from_secs(30)).await {
                Ok(bootstrap) => Fetcher::start(&connection, bootstrap, end_offset_settings()),
                Err(e) => {
                    tracing::warn!(error = %e, "pipeline view: no broker for end offsets");
                    return;
                }
            };
        let view = View {
            client,
            offsets,
            coordinator,
            group_id: settings.inventory_group.clone(),
            order_topic,
            partitions: Vec::new(),
            book: StatusBook::default(),
            desired: BTreeMap::new(),
            samples: VecDeque::new(),
            lag: Vec::new(),
            group_state: String::new(),
            history: History::default(),
            metrics,
            report_every: settings.report_interval,
            own_settings: serde_json::to_value(&settings.own_settings).unwrap_or(Value::Null),
        };
        tokio::select! {
            () = view.run(status, control, view_tx) => {}
            () = shutdown.cancelled() => {}
        }
    });
    (view, writer)
}

struct View {
    client: Arc<Client>,
    coordinator: Coordinator,
    group_id: String,
    order_topic: String,
    offsets: Fetcher,
    partitions: Vec<TopicPartition>,
    book: StatusBook,
    desired: BTreeMap<String, BTreeMap<String, String>>,
    /// (when, sum of the order topic's end offsets).
    samples: VecDeque<(Instant, i64)>,
    lag: Vec<PartitionLag>,
    group_state: String,
    history: History,
    metrics: Published,
    report_every: Duration,
    own_settings: Value,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl View {
    async fn run(
        mut self,
        mut status: mpsc::Receiver<TailEvent>,
        mut control: mpsc::Receiver<TailEvent>,
        publish: watch::Sender<Arc<PipelineView>>,
    ) {
        let mut refresh = tokio::time::interval(REFRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_lag = Instant::now() - self.report_every;
        loop {
            tokio::select! {
                Some(event) = status.recv() => self.on_status(event),
                Some(event) = control.recv() => self.on_control(event),
                _ = refresh.tick() => {
                    // Everything that arrived meanwhile first: the queries below can take a
                    // while on a busy broker, and the view must not fall behind the topics.
                    while let Ok(event) = status.try_recv() {
                        self.on_status(event);
                    }
                    while let Ok(event) = control.try_recv() {
                        self.on_control(event);
                    }
                    let ends = self.sample_end_offsets().await;
                    if last_lag.elapsed() >= self.report_every
                        && let Some(ends) = ends
                    {
                        last_lag = Instant::now();
                        self.measure_lag(ends).await;
                    }
                    publish.send_replace(Arc::new(self.render()));
                }
            }
        }
    }

    fn on_status(&mut self, event: TailEvent) {
        if let TailEvent::Record { key, value, .. } = event
            && let Some(record) = StatusRecord::decode(key.as_deref(), value.as_deref())
        {
            self.book.apply(record);
        }
    }

    fn on_control(&mut self, event: TailEvent) {
        if let TailEvent::Record { key, value, .. } = event
            && let Ok(ControlRecord::Setting {
                service,
                setting,
                value,
            }) = ControlRecord::decode(key.as_deref(), value.as_deref())
            // Never shown, even if something wrote one directly to the topic.
            && !shared::control::is_secret(&setting)
        {
            let desired = self.desired.entry(service).or_default();
            match value.filter(|v| !v.is_empty()) {
                Some(value) => {
                    desired.insert(setting, value);
                }
                None => {
                    desired.remove(&setting);
                }
            }
        }
    }

    async fn order_partitions(&mut self) -> Result<(), String> {
        if !self.partitions.is_empty() {
            return Ok(());
        }
        let topics = self.client.list_topics().await.map_err(|e| e.to_string())?;
        let Some(topic) = topics.into_iter().find(|t| t.name == self.order_topic) else {
            return Err(format!("{} does not exist", self.order_topic));
        };
        self.partitions = topic
            .partitions
            .into_iter()
            .map(|partition| TopicPartition::new(&self.order_topic, partition))
            .collect();
        Ok(())
    }

    async fn end_offsets(&mut self) -> Result<Vec<(i32, i64)>, String> {
        self.order_partitions().await?;
        let ends = tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.offsets.end_offsets(self.partitions.clone()),
        )
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
        let mut ends: Vec<(i32, i64)> = ends
            .into_iter()
            .map(|(partition, end)| (partition.partition, end))
            .collect();
        ends.sort_unstable();
        Ok(ends)
    }

    /// Samples the order topic's end offsets for the rate; returns them for the lag.
    async fn sample_end_offsets(&mut self) -> Option<Vec<(i32, i64)>> {
        match self.end_offsets().await {
            Ok(ends) => {
                let total = ends.iter().map(|(_, end)| end).sum();
                self.samples.push_back((Instant::now(), total));
                while self.samples.len() > 1
                    && self
                        .samples
                        .front()
                        .is_some_and(|(at, _)| at.elapsed() > RATE_SPAN)
                {
                    self.samples.pop_front();
                }
                Some(ends)
            }
            Err(e) => {
                tracing::debug!(error = %e, "end offsets of the order topic");
                self.partitions.clear();
                None
            }
        }
    }

    fn actual_rate(&self) -> f64 {
        match (self.samples.front(), self.samples.back()) {
            (Some((first_at, first)), Some((last_at, last))) if last_at > first_at => {
                (last - first).max(0) as f64 / last_at.duration_since(*first_at).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// Lag = end offset − the group's committed offset (Kafka's consumer-groups tool's sum).
    async fn measure_lag(&mut self, ends: Vec<(i32, i64)>) {
        let indexes: Vec<i32> = ends.iter().map(|(p, _)| *p).collect();
        let request = vec![(self.order_topic.clone(), indexes)];
        match self.coordinator.committed(&request).await {
            Ok((_, committed)) => {
                let committed: BTreeMap<i32, i64> = committed
                    .into_iter()
                    .map(|(_, c)| (c.partition, c.offset))
                    .collect();
                self.lag = ends
                    .iter()
                    .map(|(partition, end)| PartitionLag {
                        topic: self.order_topic.clone(),
                        partition: *partition,
                        lag: (end
                            - committed
                                .get(partition)
                                .copied()
                                .filter(|c| *c >= 0)
                                .unwrap_or(0))
                        .max(0),
                    })
                    .collect();
            }
            Err(e) => {
                tracing::debug!(error = %e, "committed offsets of the inventory group");
                self.coordinator.mark_unknown();
            }
        }
        match self.coordinator.describe().await {
            Ok(group) => self.group_state = group.state,
            Err(_) => self.coordinator.mark_unknown(),
        }
    }

    fn render(&mut self) -> PipelineView {
        let now = now_ms();
        let book = &self.book;
        let mode = book.setting(PRODUCER, "MODE", now);
        let paused = book
            .newest_part(PRODUCER, StatusPart::Commands, now)
            .and_then(|c| c.get("paused"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        // A steady target is a setting (seen as soon as it changes); the others move with time
        // and come with the figures.
        let target_rate = if paused {
            Some(0.0)
        } else if mode.as_deref() == Some("steady") {
            book.setting(PRODUCER, "RATE_PER_SEC", now)
                .and_then(|r| r.parse().ok())
        } else {
            book.newest_part(PRODUCER, StatusPart::Figures, now)
                .and_then(|f| f.get("target_rate"))
                .and_then(Value::as_f64)
        };
        let mut settings = book.settings(now);
        settings.insert(ANALYTICS.to_owned(), self.own_settings.clone());
        let stuck = book.stuck(INVENTORY, now);
        let figures = PipelineFigures {
            producer: ProducerFigures {
                mode,
                target_rate,
                actual_rate: self.actual_rate(),
                paused,
                acked_total: book.figure_sum(PRODUCER, "acked", now),
                instances: book.instance_count(PRODUCER, now),
            },
            inventory_group: GroupFigures {
                group_id: self.group_id.clone(),
                state: self.group_state.clone(),
                lag_total: self.lag.iter().map(|l| l.lag).sum(),
                lag: self.lag.clone(),
                members: book.members(INVENTORY, now),
                rebalances: book.rebalances().cloned().collect(),
                stuck_partitions: stuck.len(),
                stuck,
            },
            settings,
            services: book.health(now),
        };
        let metrics = self.metrics.borrow().clone();
        self.history
            .record(now, &figures, metrics.as_deref().map(|r| &r.snapshot));
        let json = serde_json::to_vec(&figures).unwrap_or_else(|e| {
            json!({"error": format!("serialising the pipeline view: {e}")})
                .to_string()
                .into_bytes()
        });
        PipelineView {
            json: json.into(),
            history_json: self.history.render().into(),
            figures,
            desired: self.desired.clone(),
            catalogues: book
                .services()
                .filter_map(|s| Some((s.clone(), book.catalogue(s)?.clone())))
                .collect(),
        }
    }
}

/// The fetcher behind the end offsets reads no partition, so only its request time matters.
fn end_offset_settings() -> FetchSettings {
    FetchSettings {
        request_timeout: REQUEST_TIMEOUT,
        ..shared::group::GroupConfig::new("pipeline-view", Vec::new()).fetch_settings()
    }
}
