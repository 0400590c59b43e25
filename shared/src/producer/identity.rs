//! Obtaining the idempotent producer's identity: InitProducerId at start, and again to bump
//! the epoch (KIP-360, InitProducerId v3+ with our current id and epoch) or to take a new id.
//!
//! It must not touch batches or sequences; the accumulator resets those when an identity
//! changes. The choice a reader may question: the request goes to any bootstrap broker, as
//! Java sends it to the least-loaded node for a producer without `transactional.id` — there is
//! no transaction coordinator to find. Whatever identity is granted is used alike: Kafka
//! answers a bump with the same id at the next epoch, Nisshi 0.8.1 with a new id at epoch 0
//! (measured in `tests/tests/lossy_produce.rs`); both restart every sequence at 0.

use std::time::Duration;

use kafka_protocol::messages::{InitProducerIdRequest, ProducerId};

use crate::backoff::{Backoff, BackoffPolicy};
use crate::connect;
use crate::settings::ConnectionSettings;

use super::batch::ProducerIdentity;
use super::errors::{InitReaction, classify_init_producer_id};

/// Which identity to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityRequest {
    /// A new producer id at epoch 0.
    Fresh,
    /// The same id at the next epoch (falls back to `Fresh` where the broker cannot bump).
    Bump(ProducerIdentity),
}

/// Asks a broker for an identity, retrying coordinator trouble until `deadline` has passed.
pub async fn obtain(
    settings: &ConnectionSettings,
    mut wanted: IdentityRequest,
    request_timeout: Duration,
    deadline: Duration,
) -> Result<ProducerIdentity, String> {
    let mut backoff = Backoff::with_deadline(BackoffPolicy::REQUESTS, deadline);
    loop {
        let remaining = backoff.remaining().unwrap_or(deadline);
        let attempt = ask_once(
            settings,
            wanted,
            request_timeout.min(remaining.max(Duration::from_millis(100))),
        )
        .await;
        let retry = match attempt {
            Ok(Ok(identity)) => return Ok(identity),
            Ok(Err((InitReaction::AskForNewId, _))) if wanted != IdentityRequest::Fresh => {
                wanted = IdentityRequest::Fresh;
                continue;
            }
            Ok(Err((InitReaction::Fail, reason))) => return Err(reason),
            Ok(Err((_, reason))) | Err(reason) => reason,
        };
        let Ok(delay) = backoff.next_delay() else {
            return Err(format!("no producer id within {deadline:?}: {retry}"));
        };
        tracing::warn!(reason = %retry, backoff = ?delay, "InitProducerId failed; retrying");
        tokio::time::sleep(delay).await;
    }
}

/// One InitProducerId round trip. The outer error is a transport failure (retry), the inner
/// one the broker's answer.
async fn ask_once(
    settings: &ConnectionSettings,
    wanted: IdentityRequest,
    request_timeout: Duration,
) -> Result<Result<ProducerIdentity, (InitReaction, String)>, String> {
    let mut connection = connect::broker_connection(settings, request_timeout)
        .await
        .map_err(|e| e.to_string())?;
    let version = match connection.negotiate::<InitProducerIdRequest>(0..=4) {
        Ok(version) => version,
        // Not worth retrying: this broker will not learn the API while we wait.
        Err(e) => {
            return Ok(Err((
                InitReaction::Fail,
                format!("{e}; the broker cannot give producer ids: set ENABLE_IDEMPOTENCE=0"),
            )));
        }
    };
    // Bumping our own epoch needs v3 (KIP-360); an older broker gets a new id instead.
    let (id, epoch) = match wanted {
        IdentityRequest::Bump(current) if version >= 3 && current.epoch < i16::MAX - 1 => {
            (current.id, current.epoch)
        }
        _ => (-1, -1),
    };
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(id))
        .with_producer_epoch(epoch);
    let response = connection
        .send(version, &request)
        .await
        .map_err(|e| e.to_string())?;
    Ok(match classify_init_producer_id(response.error_code) {
        InitReaction::Granted => Ok(ProducerIdentity {
            id: response.producer_id.0,
            epoch: response.producer_epoch,
        }),
        reaction => Err((
            reaction,
            format!(
                "InitProducerId answered error code {} (asked for id {id}, epoch {epoch})",
                response.error_code
            ),
        )),
    })
}
