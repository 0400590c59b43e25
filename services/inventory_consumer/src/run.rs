//! One inventory run: make sure the topics exist (creating them with `CREATE_TOPICS=1`), run
//! `MEMBERS` group members (`member`), apply live settings from the control topic, publish
//! status, and log a summary every `REPORT_INTERVAL_SEC`.
//!
//! This loop owns the members and the live settings; it never touches a record. A live change
//! to the rules goes to every worker through one watch channel; a change to `MEMBERS` starts
//! members (they join) or closes the newest ones (they commit and leave the group), so the
//! group rebalances exactly as it would between processes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;
use shared::admin::{TopicAdmin, TopicSpec};
use shared::control::{
    Baseline, ControlReader, LiveSettings, StatusBoard, StatusIdentity, StatusPart,
};
use shared::producer::Producer;
use shared::shutdown::Shutdown;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::live::{self, Configured, LiveRules};
use crate::member::{MemberObserver, MemberState, RunningMember, Shared};
use crate::worker::Stats;

const CONNECT_DEADLINE: Duration = Duration::from_secs(30);
/// How long start-up waits for the control topic's current settings.
const CONTROL_BOOT_WAIT: Duration = Duration::from_secs(3);
/// How often members and figures are refreshed on the status board.
const STATUS_REFRESH: Duration = Duration::from_secs(1);

pub async fn run(
    configured: Configured,
    baseline: Baseline,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let settings = &configured.settings;
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
        let mut specs = vec![
            TopicSpec::new(&settings.inventory_topic, partitions, rf),
            TopicSpec::new(&settings.dlq_topic, partitions, rf),
            TopicSpec::new(&settings.state_topic, partitions, rf)
                .with_config("cleanup.policy", "compact"),
        ];
        specs.extend(configured.control.specs(rf));
        admin
            .create_topics(&specs)
            .await
            .context("creating the inventory, control and status topics")?;
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
    // The control plane gets connections of its own: Nisshi answers one request at a time
    // per connection, and restoring stock must not queue behind the control topic's long
    // polls (nor status writes behind them).
    let control_client = shared::connect::data_client(&settings.connection, CONNECT_DEADLINE);
    let status_client = shared::connect::data_client(&settings.connection, CONNECT_DEADLINE);

    let mut control = ControlReader::start(
        Arc::new(control_client.await?),
        &configured.control.control,
        live::SERVICE,
        shutdown.clone(),
    );
    control.wait_caught_up(CONTROL_BOOT_WAIT).await;
    let status_stop = Shutdown::manual();
    let (status, status_task) = shared::control::status::publish(
        Arc::new(status_client.await?),
        &configured.control.status,
        StatusIdentity::for_this_process(live::SERVICE),
        status_stop.clone(),
    );
    let mut live_settings = LiveSettings::new(baseline, live::knobs(), Configured::from_source);
    let first = control.state.borrow_and_update().clone();
    let current = live_settings
        .apply(&first.desired)
        .unwrap_or_else(|| configured.clone());
    status.set(
        StatusPart::Settings,
        live::settings_status(&live_settings, first.unreadable.as_deref()),
    );
    let (rules_tx, rules) = watch::channel(LiveRules::of(&current.settings));
    let stats = Arc::new(Stats::default());
    let shared = Shared {
        settings: Arc::new(settings.clone()),
        outcomes,
        dead_letters,
        changelog,
        stats: Arc::clone(&stats),
        rules,
    };
    let mut members = Members {
        shared,
        running: Vec::new(),
        closing: Vec::new(),
        wanted: current.members,
    };
    let mut outcome = members.reconcile().await;
    tracing::info!(members = members.wanted, live = ?live_settings.applied(), "inventory running");
    let mut report = tokio::time::interval(settings.report_interval);
    let mut refresh = tokio::time::interval(STATUS_REFRESH);
    while outcome.is_ok() {
        tokio::select! {
            () = shutdown.cancelled() => break,
            changed = control.state.changed() => {
                if changed.is_err() {
                    continue;
                }
                let state = control.state.borrow_and_update().clone();
                if let Some(changed) = live_settings.apply(&state.desired) {
                    let rules = LiveRules::of(&changed.settings);
                    if *rules_tx.borrow() != rules {
                        tracing::info!(?rules, "live rules applied");
                        rules_tx.send_replace(rules);
                    }
                    if changed.members != members.wanted {
                        tracing::info!(from = members.wanted, to = changed.members, "MEMBERS changed live");
                        members.wanted = changed.members;
                        outcome = members.reconcile().await;
                    }
                }
                status.set(StatusPart::Settings, live::settings_status(&live_settings, state.unreadable.as_deref()));
            }
            _ = refresh.tick() => {
                outcome = members.check().await;
                publish_figures(&status, &stats);
                members.publish(&status);
            }
            _ = report.tick() => log_summary(&stats, members.running.len()),
        }
    }
    members.wanted = 0;
    let closed = members.reconcile().await.and(members.closed().await);
    log_summary(&stats, 0);
    publish_figures(&status, &stats);
    members.publish(&status);
    status_stop.trigger();
    let _ = status_task.await;
    outcome.and(closed)
}

/// The members this process runs, newest last, and those still leaving.
struct Members {
    shared: Shared,
    running: Vec<RunningMember>,
    /// A closing member first finishes the batches it was handed (with a throttle or failures
    /// that can take many seconds), so it closes in its own task: the loop stays responsive
    /// to control and keeps publishing status meanwhile.
    closing: Vec<(MemberObserver, JoinHandle<anyhow::Result<()>>)>,
    wanted: usize,
}

impl Members {
    /// Starts or closes members until `wanted` run. Closing takes the newest first, so the
    /// longest-running members keep their partitions' warm stock when the group shrinks.
    async fn reconcile(&mut self) -> anyhow::Result<()> {
        while self.running.len() < self.wanted {
            let member = RunningMember::start(self.shared.clone()).await?;
            self.running.push(member);
        }
        while self.running.len() > self.wanted {
            if let Some(member) = self.running.pop() {
                let observer = member.observer();
                self.closing.push((observer, tokio::spawn(member.close())));
            }
        }
        Ok(())
    }

    /// A member that ended by itself failed, as did one that could not close cleanly: the
    /// service stops (a restart replays the uncommitted tail).
    async fn check(&mut self) -> anyhow::Result<()> {
        if self.running.iter().any(RunningMember::is_finished) {
            bail!("a group member stopped unexpectedly");
        }
        let (done, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.closing)
            .into_iter()
            .partition(|(_, handle)| handle.is_finished());
        self.closing = open;
        for (_, handle) in done {
            // Already finished: awaiting returns at once.
            match handle.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e.context("closing a group member")),
                Err(e) => return Err(anyhow::Error::new(e).context("closing a group member")),
            }
        }
        Ok(())
    }

    /// Waits for every leaving member.
    async fn closed(&mut self) -> anyhow::Result<()> {
        let mut result = Ok(());
        for (_, handle) in self.closing.drain(..) {
            match handle.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(e) => result = Err(anyhow::Error::new(e)),
            }
        }
        result
    }

    fn publish(&self, status: &StatusBoard) {
        let mut members: Vec<_> = self.running.iter().map(RunningMember::view).collect();
        // A leaving member still holds its partitions until it has committed and left.
        members.extend(self.closing.iter().map(|(observer, _)| {
            let mut view = observer.view();
            if view.state != MemberState::Closed {
                view.state = MemberState::Leaving;
            }
            view
        }));
        status.set(
            StatusPart::Members,
            json!({ "group_id": self.shared.settings.group_id, "members": members }),
        );
    }
}

fn publish_figures(status: &StatusBoard, stats: &Stats) {
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    status.set(
        StatusPart::Figures,
        json!({
            "processed": load(&stats.processed),
            "reserved": load(&stats.reserved),
            "rejected": load(&stats.rejected),
            "failed": load(&stats.failed),
            "restocked": load(&stats.restocked),
            "retries": load(&stats.retries),
            "dead_letters": load(&stats.dead_letters),
            "malformed": load(&stats.malformed),
        }),
    );
}

fn log_summary(stats: &Stats, members: usize) {
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
        members,
        "summary"
    );
}
