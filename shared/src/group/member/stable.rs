//! The stable phase: heartbeats every `heartbeat.interval.ms` while the desk serves commits,
//! until a heartbeat or commit names a rejoin cause, the application stops polling, or it
//! closes.
//!
//! It must not revoke or rejoin itself: it returns the cause and the lifecycle acts. The
//! session clock is its own small type so its expiry can be tested on a paused clock.

use std::time::Duration;

use tokio::time::Instant;

use super::super::GroupError;
use super::super::errors::{self, ErrorAction, GroupApi};
use super::cause::RejoinCause;
use super::desk::Served;
use super::{Exit, Member};

impl Member {
    /// Heartbeats and serves commits until a rebalance, a failure or close.
    pub(super) async fn stable(&mut self) -> Result<Exit, GroupError> {
        let identity = self
            .generation
            .clone()
            .ok_or(GroupError::CoordinatorUnknown)?;
        let mut ticker = tokio::time::interval(self.config.heartbeat_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        let mut session = SessionClock::new(self.config.session_timeout);
        loop {
            let tick = ticker.tick();
            tokio::pin!(tick);
            match self.desk.serve_until(tick, true).await {
                Served::Done(_) => {}
                Served::Close(reply) => return Ok(Exit::Close(reply)),
                Served::Noticed(cause) => return Ok(Exit::Rejoin(cause)),
            }
            if self
                .last_poll
                .borrow()
                .overdue(self.config.max_poll_interval)
            {
                tracing::warn!(group = %self.config.group_id, "{}; leaving until it polls again", RejoinCause::PollTimeout.reason());
                return Ok(Exit::Rejoin(RejoinCause::PollTimeout));
            }
            match self.desk.control.heartbeat(&identity).await {
                Ok(error_code) => match errors::classify(GroupApi::Heartbeat, error_code) {
                    ErrorAction::Proceed => session.heard_back(),
                    ErrorAction::RejoinIfStable => {
                        return Ok(Exit::Rejoin(RejoinCause::GroupRebalancing));
                    }
                    ErrorAction::RejoinKeepingId => {
                        return Ok(Exit::Rejoin(RejoinCause::StaleGeneration));
                    }
                    ErrorAction::RejoinResettingId => {
                        return Ok(Exit::Rejoin(RejoinCause::UnknownMember));
                    }
                    ErrorAction::RefindCoordinator | ErrorAction::Retry => {
                        self.desk.control.mark_unknown()
                    }
                    ErrorAction::FencedInstance => return Err(self.fenced()),
                    _ => {
                        return Err(GroupError::Fatal {
                            api: GroupApi::Heartbeat,
                            error_code,
                        });
                    }
                },
                Err(e) if e.is_retriable() => {
                    tracing::warn!(error = %e, "heartbeat failed");
                    if session.expired() {
                        // The coordinator has surely expired us; do not pretend to own anything.
                        return Ok(Exit::Rejoin(RejoinCause::SessionLost));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// When the coordinator last heard from us, and whether it must have given up on us.
struct SessionClock {
    session_timeout: Duration,
    last_heard: Instant,
}

impl SessionClock {
    fn new(session_timeout: Duration) -> Self {
        Self {
            session_timeout,
            last_heard: Instant::now(),
        }
    }

    fn heard_back(&mut self) {
        self.last_heard = Instant::now();
    }

    /// No heartbeat has got through for longer than the session timeout.
    fn expired(&self) -> bool {
        self.last_heard.elapsed() > self.session_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_session_expires_after_the_session_timeout_without_an_answer_and_a_heartbeat_renews_it()
     {
        let mut session = SessionClock::new(Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(!session.expired());
        session.heard_back();
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(!session.expired(), "the heartbeat renewed the session");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(session.expired());
    }
}
