//! One producer run: create the topic if asked, generate orders at the configured pace, report
//! progress, then flush and summarise with exact counts.
//!
//! The exit status is the contract: success only when every order sent was acknowledged.
//! Shutdown stops generation, not delivery: what was handed to the producer is flushed first.
//! The pacing, the items and pause/burst can change while running, from the control topic
//! (`live`); one loop owns all of it, so a change is never half applied.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use shared::admin::{TopicAdmin, TopicSpec};
use shared::control::{
    Baseline, Command, ControlReader, LiveSettings, StatusBoard, StatusIdentity, StatusPart,
};
use tokio::sync::watch;

use bytes::Bytes;
use shared::events::ORDER_SCHEMA_VERSION;
use shared::producer::{OutgoingRecord, Producer, ProducerStats};
use shared::settings::LogFormat;
use shared::shutdown::Shutdown;

use crate::generator::OrderGenerator;
use crate::live::{self, Plan};
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

pub async fn run(
    settings: ProducerSettings,
    baseline: Baseline,
    shutdown: Shutdown,
) -> anyhow::Result<Summary> {
    if settings.create_topics {
        let mut admin = TopicAdmin::connect(&settings.connection, CONNECT_DEADLINE).await?;
        let mut specs = vec![TopicSpec::new(
            &settings.order_topic,
            settings.topic_partitions,
            settings.replication_factor,
        )];
        specs.extend(settings.control.specs(settings.replication_factor));
        let outcome = admin
            .create_topics(&specs)
            .await
            .context("creating the order, control and status topics")?;
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
    // One connection to read control and one to write status: Nisshi answers one request at a
    // time per connection, so a status write must not queue behind a long-poll fetch.
    let connect = || async {
        shared::connect::data_client(&settings.connection, CONNECT_DEADLINE)
            .await
            .map(Arc::new)
            .context("connecting the control plane")
    };
    let mut control = ControlReader::start(
        connect().await?,
        &settings.control.control,
        live::SERVICE,
        shutdown.clone(),
    );
    // Start on the live settings if they can be read quickly; otherwise on the env file's.
    control.wait_caught_up(CONTROL_BOOT_WAIT).await;
    // Status outlives generation: the last figures are written after the final flush.
    let status_stop = Shutdown::manual();
    let (status, status_task) = shared::control::status::publish(
        connect().await?,
        &settings.control.status,
        StatusIdentity::for_this_process(live::SERVICE),
        status_stop.clone(),
    );
    let mut live_settings =
        LiveSettings::new(baseline, live::knobs(), ProducerSettings::from_source);
    let first = control.state.borrow_and_update().clone();
    let plan = live_settings
        .apply(&first.desired)
        .map_or_else(|| Plan::of(&settings), |live| Plan::of(&live));
    status.set(
        StatusPart::Settings,
        live::settings_status(&live_settings, first.unreadable.as_deref()),
    );
    tracing::info!(
        topic = %settings.order_topic,
        partitions = producer.partitions(),
        pacing = ?plan.pacing,
        total = settings.total_events,
        live = ?live_settings.applied(),
        "producing orders"
    );
    let started = Instant::now();
    let (schedule_tx, schedule) = watch::channel(Schedule {
        pacing: plan.pacing,
        origin: started,
        paused: false,
    });
    let progress = tokio::spawn(report_progress(
        producer.clone(),
        schedule,
        settings.progress_interval,
        started,
    ));
    let generator = OrderGenerator::new(
        settings.seed,
        plan.item_count,
        plan.skew,
        settings.customer_count,
        "EUR",
    );
    let mut generation = Generation {
        producer: &producer,
        generator,
        plan,
        schedule: schedule_tx,
        live: live_settings,
        status: status.clone(),
        sent: 0,
        sent_in_schedule: 0,
        burst_left: 0,
        next_burst_at: Instant::now(),
        commands_done: 0,
        last_command: None,
    };
    let total = if settings.total_events == 0 {
        u64::MAX
    } else {
        settings.total_events
    };
    let generated = generation.run(total, &mut control, &shutdown).await;
    let interrupted = shutdown.is_triggered();
    if let Err(e) = &generated {
        tracing::error!(error = %e, "order generation stopped");
    }
    producer.flush().await.context("flushing")?;
    progress.abort();
    generation.publish_figures();
    status_stop.trigger();
    let _ = status_task.await;
    Ok(Summary {
        stats: producer.stats(),
        seconds: started.elapsed().as_secs_f64(),
        interrupted,
    })
}

/// How long start-up waits for the control topic's current settings.
const CONTROL_BOOT_WAIT: Duration = Duration::from_secs(3);
/// How often the loop refreshes the figures it publishes (the status task sends them on).
const FIGURES_REFRESH: Duration = Duration::from_secs(1);

/// The pacing in force and when its schedule started: a live change restarts the schedule,
/// because pacing is a function of elapsed time and keeping the old origin would send a
/// catch-up burst (or a silence) to make up for a rate that was never asked for.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    pacing: Pacing,
    origin: Instant,
    paused: bool,
}

/// The run loop's state; it alone owns the generator and the live settings.
struct Generation<'a> {
    producer: &'a Producer,
    generator: OrderGenerator,
    plan: Plan,
    schedule: watch::Sender<Schedule>,
    live: LiveSettings<ProducerSettings>,
    status: StatusBoard,
    sent: u64,
    /// Orders sent since the schedule's origin.
    sent_in_schedule: u64,
    /// Orders of a burst (the burst pacing's, or a one-off command's) still to send.
    burst_left: u64,
    next_burst_at: Instant,
    commands_done: u64,
    last_command: Option<serde_json::Value>,
}

/// What the loop should do next.
enum Step {
    Send(u64),
    Wait(Duration),
}

impl Generation<'_> {
    /// Sends orders as the (live) pacing says until `total` or shutdown.
    async fn run(
        &mut self,
        total: u64,
        control: &mut ControlReader,
        shutdown: &Shutdown,
    ) -> anyhow::Result<()> {
        let mut figures_at = Instant::now();
        let mut one_off = 0u64;
        while self.sent < total && !shutdown.is_triggered() {
            if figures_at.elapsed() >= FIGURES_REFRESH {
                figures_at = Instant::now();
                self.publish_figures();
            }
            let step = if one_off > 0 {
                Step::Send(one_off.min(CHUNK))
            } else {
                self.next_step()
            };
            match step {
                Step::Send(count) => {
                    let count = count.min(total - self.sent);
                    send_chunk(self.producer, &mut self.generator, count).await?;
                    self.sent += count;
                    if one_off > 0 {
                        one_off -= count;
                    } else {
                        self.sent_in_schedule += count;
                        self.burst_left = self.burst_left.saturating_sub(count);
                    }
                    // Stay responsive to control while sending flat out.
                    if let Ok(command) = control.commands.try_recv() {
                        one_off += self.act_on(command);
                    }
                    if control.state.has_changed().unwrap_or(false) {
                        self.apply_control(control);
                    }
                }
                Step::Wait(pause) => {
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = shutdown.cancelled() => {}
                        changed = control.state.changed() => {
                            if changed.is_ok() {
                                self.apply_control(control);
                            }
                        }
                        Some(command) = control.commands.recv() => one_off += self.act_on(command),
                    }
                }
            }
        }
        Ok(())
    }

    fn next_step(&mut self) -> Step {
        let schedule = *self.schedule.borrow();
        if schedule.paused {
            return Step::Wait(Duration::from_millis(250));
        }
        match schedule.pacing {
            Pacing::Burst { size, pause } => {
                if self.burst_left == 0 {
                    let now = Instant::now();
                    if now < self.next_burst_at {
                        return Step::Wait(self.next_burst_at - now);
                    }
                    self.burst_left = size;
                    self.next_burst_at = now;
                }
                if self.burst_left <= CHUNK {
                    // The pause starts when the burst is done, not when it started.
                    self.next_burst_at = Instant::now() + pause;
                }
                Step::Send(self.burst_left.min(CHUNK))
            }
            pacing => {
                let due = pacing.due_by(schedule.origin.elapsed());
                if self.sent_in_schedule < due {
                    Step::Send((due - self.sent_in_schedule).min(CHUNK))
                } else {
                    Step::Wait(Duration::from_millis(1))
                }
            }
        }
    }

    fn restart_schedule(&mut self, pacing: Pacing, paused: bool) {
        self.sent_in_schedule = 0;
        self.burst_left = 0;
        self.next_burst_at = Instant::now();
        self.schedule.send_replace(Schedule {
            pacing,
            origin: Instant::now(),
            paused,
        });
    }

    fn apply_control(&mut self, control: &mut ControlReader) {
        let state = control.state.borrow_and_update().clone();
        if let Some(settings) = self.live.apply(&state.desired) {
            let plan = Plan::of(&settings);
            if plan.pacing != self.plan.pacing {
                let paused = self.schedule.borrow().paused;
                self.restart_schedule(plan.pacing, paused);
            }
            if (plan.item_count, plan.skew) != (self.plan.item_count, self.plan.skew) {
                self.generator.set_items(plan.item_count, plan.skew);
            }
            tracing::info!(pacing = ?plan.pacing, items = plan.item_count, skew = plan.skew, live = ?self.live.applied(), "live settings applied");
            self.plan = plan;
        }
        self.status.set(
            StatusPart::Settings,
            live::settings_status(&self.live, state.unreadable.as_deref()),
        );
    }

    /// Acts on a one-off command and acknowledges it; returns the orders of a burst to send.
    fn act_on(&mut self, command: Command) -> u64 {
        let mut burst = 0;
        let result = match command.command.as_str() {
            "pause" => {
                let pacing = self.schedule.borrow().pacing;
                self.restart_schedule(pacing, true);
                "paused"
            }
            "resume" => {
                let pacing = self.schedule.borrow().pacing;
                self.restart_schedule(pacing, false);
                "resumed"
            }
            "burst" => match command.count {
                Some(count) if (1..=10_000_000).contains(&count) => {
                    burst = count;
                    "sending"
                }
                _ => "refused: a burst needs a count from 1 to 10000000",
            },
            _ => "refused: unknown command (accepted: burst, pause, resume)",
        };
        tracing::info!(id = %command.id, command = %command.command, count = ?command.count, result, "control command");
        self.commands_done += 1;
        self.last_command = Some(json!({
            "id": command.id,
            "command": command.command,
            "count": command.count,
            "result": result,
            "at": chrono::Utc::now().timestamp_millis(),
        }));
        self.publish_commands();
        burst
    }

    fn publish_commands(&self) {
        self.status.set(
            StatusPart::Commands,
            json!({
                "paused": self.schedule.borrow().paused,
                "acted_on": self.commands_done,
                "last": self.last_command,
            }),
        );
    }

    fn publish_figures(&self) {
        let stats = self.producer.stats();
        let schedule = *self.schedule.borrow();
        let target = if schedule.paused {
            Some(0.0)
        } else {
            schedule.pacing.rate_at(schedule.origin.elapsed())
        };
        self.status.set(
            StatusPart::Figures,
            json!({
                "sent": stats.sent,
                "acked": stats.acknowledged,
                "failed": stats.failed,
                "target_rate": target,
            }),
        );
    }
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

async fn report_progress(
    producer: Producer,
    schedule: watch::Receiver<Schedule>,
    every: Duration,
    started: Instant,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.tick().await;
    let mut last = (Instant::now(), 0u64);
    loop {
        ticker.tick().await;
        let stats = producer.stats();
        let now = Instant::now();
        let rate = (stats.acknowledged - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
        last = (now, stats.acknowledged);
        let current = *schedule.borrow();
        let target = if current.paused {
            "paused".to_owned()
        } else {
            current
                .pacing
                .rate_at(current.origin.elapsed())
                .map_or_else(|| "burst".to_owned(), |r| format!("{r:.0}/s"))
        };
        tracing::info!(
            sent = stats.sent,
            acknowledged = stats.acknowledged,
            failed = stats.failed,
            rate = format!("{rate:.0}/s"),
            target,
            elapsed = format!("{:.1}s", started.elapsed().as_secs_f64()),
            "progress"
        );
    }
}
