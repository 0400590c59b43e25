//! One member of the inventory group inside this process: its own group consumer (member id,
//! coordinator and data connections, fetchers), a worker per assigned partition, and a view
//! of itself for the status topic (member id, generation, partitions, last rebalance).
//!
//! Its loop alone owns the consumer and the workers' channels; a revocation is acknowledged
//! (by polling again) only once the leaving partitions' workers have committed. The process
//! runs `MEMBERS` of these side by side (`run`), so a rebalance inside one process is the same
//! protocol as one between processes. What a rebalance "paused" is measured here, from the
//! revocation to the moment the new assignment's stock is restored and its workers run.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use shared::control::StuckPartition;
use shared::group::fetch::{FetchSettings, Fetcher};
use shared::group::{
    ConsumerEvent, GroupConfig, GroupConsumer, MemberPhase, MemberSnapshot, OffsetReset,
    TopicPartition,
};
use shared::producer::Producer;
use shared::shutdown::Shutdown;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::live::LiveRules;
use crate::settings::{InventorySettings, OffsetReset as ConfiguredReset};
use crate::state;
use crate::worker::{Outputs, Stats, Worker};

const CONNECT_DEADLINE: Duration = Duration::from_secs(30);

/// What every member of the process shares.
#[derive(Clone)]
pub struct Shared {
    pub settings: Arc<InventorySettings>,
    pub outcomes: Producer,
    pub dead_letters: Producer,
    pub changelog: Producer,
    pub stats: Arc<Stats>,
    pub rules: watch::Receiver<LiveRules>,
}

/// A member as the status topic shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemberView {
    pub member_id: String,
    pub generation: i32,
    pub state: MemberState,
    pub partitions: Vec<i32>,
    pub last_rebalance: Option<Rebalance>,
    /// Partitions paused on a batch that does not decode.
    pub stuck: Vec<StuckPartition>,
}

/// Where a member is in its life, as the status topic spells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    #[default]
    Joining,
    Stable,
    Rebalancing,
    /// Closing: finishing its batches, committing, then LeaveGroup; it still holds its
    /// partitions meanwhile.
    Leaving,
    Closed,
    Failed,
}

impl From<MemberPhase> for MemberState {
    fn from(phase: MemberPhase) -> Self {
        match phase {
            MemberPhase::Joining => Self::Joining,
            MemberPhase::Stable => Self::Stable,
            MemberPhase::Rebalancing => Self::Rebalancing,
            MemberPhase::Closed => Self::Closed,
            MemberPhase::Failed => Self::Failed,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Rebalance {
    /// Epoch milliseconds when the new assignment started running.
    pub at: i64,
    pub cause: String,
    pub revoked: Vec<i32>,
    pub assigned: Vec<i32>,
    /// From revocation (or from joining, the first time) until the new partitions ran.
    pub paused_ms: u64,
}

/// A member running in its own task.
pub struct RunningMember {
    stop: Shutdown,
    task: JoinHandle<anyhow::Result<()>>,
    /// Partitions and the last rebalance, as the member's loop saw them.
    view: watch::Receiver<MemberView>,
    /// Member id, generation and phase, as the group member publishes them.
    snapshot: watch::Receiver<MemberSnapshot>,
}

impl RunningMember {
    /// Starts the consumer (it joins in the background) and the member's loop.
    pub async fn start(shared: Shared) -> anyhow::Result<Self> {
        let consumer = start_consumer(&shared.settings).await?;
        let snapshot = consumer.watch_snapshot();
        let stop = Shutdown::manual();
        let (view_tx, view) = watch::channel(MemberView::default());
        let task = tokio::spawn(run_member(shared, consumer, stop.clone(), view_tx));
        Ok(Self {
            stop,
            task,
            view,
            snapshot,
        })
    }

    /// The member now: identity from the group member, the rest from its loop.
    pub fn view(&self) -> MemberView {
        self.observer().view()
    }

    /// Something that keeps showing the member while it closes in another task.
    pub fn observer(&self) -> MemberObserver {
        MemberObserver {
            view: self.view.clone(),
            snapshot: self.snapshot.clone(),
        }
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Finishes the work handed out, commits it, leaves the group (LeaveGroup) and returns how
    /// the member ended.
    pub async fn close(self) -> anyhow::Result<()> {
        self.stop.trigger();
        self.task.await.context("group member panicked")?
    }
}

/// A read-only view on a member.
pub struct MemberObserver {
    view: watch::Receiver<MemberView>,
    snapshot: watch::Receiver<MemberSnapshot>,
}

impl MemberObserver {
    pub fn view(&self) -> MemberView {
        let snapshot = self.snapshot.borrow();
        let mut view = self.view.borrow().clone();
        view.member_id.clone_from(&snapshot.member_id);
        view.generation = snapshot.generation;
        if view.state != MemberState::Closed {
            view.state = snapshot.phase.into();
        }
        view
    }
}

struct Running {
    batches: mpsc::Sender<shared::group::RecordBatch>,
    task: JoinHandle<anyhow::Result<()>>,
}

fn numbers(partitions: &[TopicPartition]) -> Vec<i32> {
    let mut numbers: Vec<i32> = partitions.iter().map(|p| p.partition).collect();
    numbers.sort_unstable();
    numbers
}

fn group_config(settings: &InventorySettings) -> GroupConfig {
    let mut config = GroupConfig::new(
        settings.group_id.clone(),
        vec![settings.order_topic.clone()],
    )
    .with_session_timeout(settings.session_timeout)
    .with_fetch(&settings.fetch);
    config.assignors = settings.assignors.clone();
    config.enable_auto_commit = false;
    config.auto_offset_reset = match settings.auto_offset_reset {
        ConfiguredReset::Earliest => OffsetReset::Earliest,
        ConfiguredReset::Latest => OffsetReset::Latest,
        ConfiguredReset::None => OffsetReset::None,
    };
    config
}

fn consumer_fetch_settings(settings: &InventorySettings) -> FetchSettings {
    group_config(settings).fetch_settings()
}

async fn start_consumer(settings: &InventorySettings) -> anyhow::Result<GroupConsumer> {
    let config = group_config(settings);
    Ok(GroupConsumer::start(&settings.connection, config, CONNECT_DEADLINE).await?)
}

async fn run_member(
    shared: Shared,
    mut consumer: GroupConsumer,
    stop: Shutdown,
    view: watch::Sender<MemberView>,
) -> anyhow::Result<()> {
    let settings = &shared.settings;
    let outputs = Outputs {
        outcomes: shared.outcomes.clone(),
        dead_letters: shared.dead_letters.clone(),
        changelog: shared.changelog.clone(),
        committer: crate::commit::CommitQueue::start(consumer.committer()),
        stats: Arc::clone(&shared.stats),
        failures: shared.rules.borrow().failures,
        throttle: shared.rules.borrow().throttle,
        initial_stock: settings.initial_stock,
        restock: shared.rules.borrow().restock,
        rules: shared.rules.clone(),
    };
    // The changelog is read with a fetcher of its own (no group: every partition is read
    // from its start on each assignment), so restoring never competes with the orders.
    let changelog_reader = Fetcher::start(
        &settings.connection,
        shared::connect::broker_connection(&settings.connection, CONNECT_DEADLINE).await?,
        FetchSettings {
            reset: OffsetReset::Earliest,
            ..consumer_fetch_settings(settings)
        },
    );
    let mut workers: HashMap<TopicPartition, Running> = HashMap::new();
    // When processing last stopped (revocation), or when this member began joining; `None`
    // while nothing is stopped: a cooperative rebalance can assign without revoking anything
    // first, and then nothing paused.
    let mut paused_since = Some(Instant::now());
    let mut revoked: Vec<i32> = Vec::new();
    let mut revoked_lost = false;
    let mut first = true;
    let outcome: anyhow::Result<()> = loop {
        // Refreshed after every event, a stuck partition's own among them (no allocation while
        // nothing is stuck).
        let stuck = StuckPartition::list(consumer.stuck());
        view.send_if_modified(|v| {
            let changed = v.stuck != stuck;
            if changed {
                v.stuck = stuck;
            }
            changed
        });
        let event = tokio::select! {
            biased;
            // Only stopping may interrupt a poll: the consumer's `next` is not written to be
            // abandoned half way through an assignment for anything less.
            () = stop.cancelled() => break Ok(()),
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
                for partition in &partitions {
                    let stock = stocks.remove(&partition.partition).unwrap_or_default();
                    tracing::info!(%partition, items = stock.len(), "stock restored");
                    let (batches, receiver) = mpsc::channel(2);
                    let worker = Worker::new(partition.clone(), stock, outputs.clone());
                    let task = tokio::spawn(worker.run(receiver));
                    workers.insert(partition.clone(), Running { batches, task });
                }
                let rebalance = Rebalance {
                    at: chrono::Utc::now().timestamp_millis(),
                    cause: if first {
                        "joined".to_owned()
                    } else if revoked_lost {
                        "partitions lost (the group moved on without this member)".to_owned()
                    } else {
                        "group rebalance".to_owned()
                    },
                    revoked: std::mem::take(&mut revoked),
                    assigned: numbers(&partitions),
                    paused_ms: paused_since.take().map_or(0, |since| {
                        u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
                    }),
                };
                first = false;
                let mut held: Vec<TopicPartition> = workers.keys().cloned().collect();
                held.sort();
                view.send_modify(|v| {
                    v.partitions = numbers(&held);
                    v.last_rebalance = Some(rebalance);
                });
            }
            Some(Ok(ConsumerEvent::Revoked { partitions, lost })) => {
                // Only these partitions stop (all of them when eager, the moved ones when
                // cooperative): their workers finish and commit; the others keep running.
                paused_since = Some(Instant::now());
                for partition in &partitions {
                    if let Some(running) = workers.remove(partition) {
                        drop(running.batches);
                        running.task.await.context("worker panicked")??;
                    }
                }
                revoked = numbers(&partitions);
                revoked_lost = lost;
                let mut held: Vec<TopicPartition> = workers.keys().cloned().collect();
                held.sort();
                if lost {
                    tracing::warn!(partitions = ?revoked, "partitions lost: the group moved on without this member");
                }
                view.send_modify(|v| v.partitions = numbers(&held));
            }
            // Shown by the view's refresh at the top of the loop.
            Some(Ok(ConsumerEvent::Stuck { .. })) => {}
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
    consumer.close().await?;
    view.send_modify(|v| {
        v.state = MemberState::Closed;
        v.partitions.clear();
    });
    if let Some(e) = worker_errors.into_iter().next() {
        return Err(e);
    }
    outcome
}
