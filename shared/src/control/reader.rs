//! A service's view of the control topic: its desired live settings (latest value per key,
//! read from the start at boot) and the one-off commands written for it since it started.
//!
//! It only collects and delivers; applying a value is the service's business (through
//! [`super::LiveSettings`]). Commands that were already in the topic when the service started
//! belonged to an earlier run and are never replayed; commands are also remembered by id, so
//! re-reading a recreated topic cannot act on one twice. Losing the topic changes nothing:
//! the desired settings are only ever changed by records, never cleared by an outage.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rskafka::client::Client;
use tokio::sync::{mpsc, watch};

use super::record::{Command, ControlRecord};
use super::tail::{self, TailEvent};
use crate::shutdown::Shutdown;

/// Command ids remembered against re-reads.
const REMEMBERED_COMMANDS: usize = 256;

/// What the service sees of the control topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlState {
    /// Setting → desired value, for this service only.
    pub desired: BTreeMap<String, String>,
    /// Whether the topic can be read right now (`false` with the reason once it cannot).
    pub unreadable: Option<String>,
    /// The initial read from the start has finished.
    pub caught_up: bool,
}

/// The receiving ends a service holds.
pub struct ControlReader {
    pub state: watch::Receiver<ControlState>,
    pub commands: mpsc::Receiver<Command>,
}

impl ControlReader {
    /// Follows `topic` for the records of `service`.
    pub fn start(client: Arc<Client>, topic: &str, service: &str, shutdown: Shutdown) -> Self {
        let events = tail::follow(client, topic.to_owned(), shutdown);
        let (state_tx, state) = watch::channel(ControlState::default());
        let (command_tx, commands) = mpsc::channel(16);
        tokio::spawn(collect(
            events,
            topic.to_owned(),
            service.to_owned(),
            state_tx,
            command_tx,
        ));
        Self { state, commands }
    }

    /// Waits (up to `limit`) for the initial read, so a service starts on its live settings
    /// rather than switching to them a moment later. Returns whether it caught up.
    pub async fn wait_caught_up(&mut self, limit: Duration) -> bool {
        tokio::time::timeout(
            limit,
            self.state
                .wait_for(|s| s.caught_up || s.unreadable.is_some()),
        )
        .await
        .is_ok_and(|state| state.is_ok_and(|s| s.caught_up))
    }
}

async fn collect(
    mut events: mpsc::Receiver<TailEvent>,
    topic: String,
    service: String,
    state: watch::Sender<ControlState>,
    commands: mpsc::Sender<Command>,
) {
    let mut desired: BTreeMap<String, String> = BTreeMap::new();
    let mut caught_up = false;
    // Before the first catch-up, commands are history; after a restart of the topic every
    // command in it was written while we ran.
    let mut commands_live = false;
    let mut seen: VecDeque<String> = VecDeque::new();
    while let Some(event) = events.recv().await {
        match event {
            TailEvent::Record {
                key, value, offset, ..
            } => match ControlRecord::decode(key.as_deref(), value.as_deref()) {
                Ok(ControlRecord::Setting {
                    service: owner,
                    setting,
                    value,
                }) if owner == service => match value {
                    Some(value) if !value.is_empty() => {
                        desired.insert(setting, value);
                    }
                    _ => {
                        desired.remove(&setting);
                    }
                },
                Ok(ControlRecord::Command {
                    service: owner,
                    command,
                }) if owner == service => {
                    if seen.contains(&command.id) {
                        continue;
                    }
                    seen.push_back(command.id.clone());
                    if seen.len() > REMEMBERED_COMMANDS {
                        seen.pop_front();
                    }
                    if commands_live && commands.send(command).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(%topic, offset, error = %e, "unreadable control record skipped")
                }
            },
            TailEvent::CaughtUp => {
                caught_up = true;
                commands_live = true;
            }
            TailEvent::Restarted => {
                tracing::warn!(%topic, "the control topic was recreated; reading it again from its start (current settings are kept)");
                commands_live = true;
            }
            TailEvent::Unreadable(reason) => {
                tracing::warn!(%topic, %reason, "cannot read the control topic; running on the current settings until it can be read again");
                state.send_modify(|s| s.unreadable = Some(reason));
                continue;
            }
            TailEvent::Readable => {
                tracing::info!(%topic, "the control topic can be read again");
                state.send_modify(|s| s.unreadable = None);
                continue;
            }
        }
        // Deliver only whole views: the boot read is applied once, when it is complete.
        if caught_up && events.is_empty() {
            state.send_if_modified(|s| {
                let changed = s.desired != desired || !s.caught_up;
                s.desired.clone_from(&desired);
                s.caught_up = true;
                changed
            });
        }
    }
}
