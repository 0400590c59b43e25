//! The producer's links to brokers: one connection per broker address (Down / Connecting / Up),
//! the Produce requests in flight to it, where its next drain starts, and leader lookups.
//! Part of the accumulator's one owner of state; connecting and looking up are spawned tasks
//! that report back as events. The choice a reader may question: partitions whose leader is in
//! doubt share one Metadata request for the whole topic (as Java refreshes metadata for all),
//! and each takes only its own leader from it.

use std::sync::Arc;
use std::time::Duration;

use super::{Accumulator, Event};
use crate::producer::pipeline::Pipeline;
use crate::settings::ConnectionSettings;
use crate::{admin, connect};

pub(super) enum Link {
    Down,
    Connecting,
    /// `generation` tells this connection's answers from those of one closed before it.
    Up {
        pipeline: Pipeline,
        generation: u64,
    },
}

/// One broker as the producer sees it.
pub(super) struct BrokerLink {
    pub(super) address: String,
    pub(super) link: Link,
    /// Produce requests sent and not yet answered, counting those of a closed connection until
    /// their failure comes back (Java's in-flight requests per connection).
    pub(super) requests_in_flight: usize,
    /// The partition the next drain starts at, so that under the request's byte cap no
    /// partition waits behind the same others every time (Java's `drainIndex` per node).
    pub(super) drain_start: usize,
    generations: u64,
}

impl BrokerLink {
    pub(super) fn new(address: String) -> Self {
        Self {
            address,
            link: Link::Down,
            requests_in_flight: 0,
            drain_start: 0,
            generations: 0,
        }
    }
}

impl Accumulator {
    /// The broker at `address`, added when first named (a leader may move to a new broker).
    pub(super) fn broker_at(&mut self, address: &str) -> usize {
        match self.brokers.iter().position(|b| b.address == address) {
            Some(index) => index,
            None => {
                self.brokers.push(BrokerLink::new(address.to_owned()));
                self.brokers.len() - 1
            }
        }
    }

    pub(super) fn connect(&mut self, broker: usize) {
        let Some(state) = self.brokers.get_mut(broker) else {
            return;
        };
        state.link = Link::Connecting;
        let settings = self.settings.clone();
        let topic = Arc::clone(&self.topic);
        let address = state.address.clone();
        let timeout = self.config.request_timeout;
        let events = self.events.clone();
        tokio::spawn(async move {
            let result = Pipeline::open(&settings, &address, &topic, timeout).await;
            let _ = events.send(Event::Connected { broker, result });
        });
    }

    pub(super) fn on_connected(&mut self, broker: usize, result: Result<Pipeline, String>) {
        let Some(state) = self.brokers.get_mut(broker) else {
            return;
        };
        match result {
            Ok(pipeline) => {
                state.generations += 1;
                state.link = Link::Up {
                    pipeline,
                    generation: state.generations,
                };
            }
            Err(reason) => {
                state.link = Link::Down;
                let address = state.address.clone();
                // The broker may be gone: its partitions look their leaders up again, and
                // those with batches waiting back off first.
                let mut waiting = 0;
                for partition in self.partitions.iter_mut().filter(|p| p.leader == broker) {
                    partition.leader_stale = true;
                    if !partition.ready.is_empty() {
                        partition.back_off();
                        waiting += 1;
                    }
                }
                tracing::warn!(topic = %self.topic, broker = %address, partitions = waiting, %reason, "cannot reach the partition leader; retrying");
            }
        }
    }

    /// Closes the broker's connection if it is still the one `generation` names; every request
    /// on it then fails and comes back.
    pub(super) fn close_link(&mut self, broker: usize, generation: u64) {
        if let Some(state) = self.brokers.get_mut(broker)
            && matches!(state.link, Link::Up { generation: current, .. } if current == generation)
        {
            state.link = Link::Down;
        }
    }

    pub(super) fn look_up_leaders(&mut self) {
        self.looking_up_leaders = true;
        let settings = self.settings.clone();
        let topic = Arc::clone(&self.topic);
        let timeout = self.config.request_timeout;
        let events = self.events.clone();
        tokio::spawn(async move {
            let result = find_leaders(&settings, &topic, timeout).await;
            let _ = events.send(Event::Leaders(result));
        });
    }

    /// Every partition whose leader was in doubt takes its leader from the answer; if there is
    /// none it tries its last known leader again.
    pub(super) fn on_leaders(&mut self, result: Result<Vec<String>, String>) {
        self.looking_up_leaders = false;
        let leaders = result.unwrap_or_else(|reason| {
            tracing::warn!(topic = %self.topic, %reason, "looking the partition leaders up failed; trying the known ones");
            Vec::new()
        });
        for index in 0..self.partitions.len() {
            if !self.partitions[index].leader_stale {
                continue;
            }
            if let Some(address) = leaders.get(index) {
                let broker = self.broker_at(address);
                self.partitions[index].leader = broker;
            }
            self.partitions[index].leader_stale = false;
        }
    }
}

/// Looks the topic's partition leaders up through a bootstrap broker.
async fn find_leaders(
    settings: &ConnectionSettings,
    topic: &str,
    request_timeout: Duration,
) -> Result<Vec<String>, String> {
    let mut bootstrap = connect::broker_connection(settings, request_timeout)
        .await
        .map_err(|e| e.to_string())?;
    admin::partition_leaders(&mut bootstrap, topic)
        .await
        .map_err(|e| e.to_string())
}
