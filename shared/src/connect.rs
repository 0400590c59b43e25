//! Reaching the brokers named by `BOOTSTRAP_SERVERS`, with retry and backoff up to a deadline.
//!
//! Two kinds of connection come from here: rskafka's [`rskafka::client::Client`] for the data
//! path (produce, fetch) and our own [`BrokerConnection`] for admin and group APIs. Both fail
//! with one error that names every address tried and what each answered, because "could not
//! connect" alone is the most common question people ask about Kafka demos.

use std::time::{Duration, Instant};

use rskafka::client::{Client, ClientBuilder};

use crate::backoff::{Backoff, BackoffPolicy};
use crate::security;
use crate::settings::ConnectionSettings;
use crate::wire::{BrokerConnection, WireError};

/// Time allowed for one request on our own connections.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Connection set-up retries: 100 ms doubling to 5 s (brokers that are still starting take
/// seconds, not milliseconds), with the shared jitter.
const CONNECT_BACKOFF: BackoffPolicy =
    BackoffPolicy::doubling(Duration::from_millis(100), Duration::from_secs(5));

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "could not reach any broker of BOOTSTRAP_SERVERS within {waited:?}; tried {}",
        describe(tried)
    )]
    Unreachable {
        waited: Duration,
        tried: Vec<(String, String)>,
    },
    #[error("a broker answered but cannot be used: {0}")]
    Unusable(WireError),
    #[error("TLS settings: {0}")]
    Security(#[from] security::SecurityError),
    #[error("rskafka client for {servers}: {reason}")]
    DataClient { servers: String, reason: String },
}

fn describe(tried: &[(String, String)]) -> String {
    tried
        .iter()
        .map(|(address, error)| format!("{address} ({error})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Opens our own connection to the first bootstrap broker that answers, retrying every
/// address with exponential backoff until `deadline` has passed.
pub async fn broker_connection(
    settings: &ConnectionSettings,
    deadline: Duration,
) -> Result<BrokerConnection, ConnectError> {
    let started = Instant::now();
    let mut backoff = Backoff::with_deadline(CONNECT_BACKOFF, deadline);
    let mut last_errors: Vec<(String, String)> = Vec::new();
    loop {
        last_errors.clear();
        for address in &settings.bootstrap_servers {
            let remaining = deadline
                .saturating_sub(started.elapsed())
                .max(Duration::from_millis(100));
            let timeout = remaining.min(DEFAULT_REQUEST_TIMEOUT);
            match BrokerConnection::connect(
                address,
                &settings.security,
                &settings.client_id,
                timeout,
            )
            .await
            {
                Ok(mut connection) => {
                    connection.set_request_timeout(DEFAULT_REQUEST_TIMEOUT);
                    return Ok(connection);
                }
                Err(e) if e.is_transient() => last_errors.push((address.clone(), e.to_string())),
                Err(e) => return Err(ConnectError::Unusable(e)),
            }
        }
        let Ok(wait) = backoff.next_delay() else {
            return Err(ConnectError::Unreachable {
                waited: started.elapsed(),
                tried: last_errors,
            });
        };
        tracing::debug!(?wait, errors = %describe(&last_errors), "no broker answered yet; retrying");
        tokio::time::sleep(wait).await;
    }
}

/// Builds rskafka's client for the data path once a broker is known to answer.
pub async fn data_client(
    settings: &ConnectionSettings,
    deadline: Duration,
) -> Result<Client, ConnectError> {
    let started = Instant::now();
    // Probing with our own connection first gives a per-address error on failure, which
    // rskafka's builder does not.
    drop(broker_connection(settings, deadline).await?);
    let remaining = deadline
        .saturating_sub(started.elapsed())
        .max(Duration::from_secs(1));
    let mut builder = ClientBuilder::new(settings.bootstrap_servers.clone())
        .client_id(settings.client_id.clone())
        .backoff_config(rskafka::BackoffConfig {
            init_backoff: CONNECT_BACKOFF.initial,
            max_backoff: CONNECT_BACKOFF.max,
            base: CONNECT_BACKOFF.multiplier,
            deadline: Some(remaining),
        });
    if settings.security.protocol.uses_tls() {
        builder = builder.tls_config(security::tls_client_config(&settings.security)?);
    }
    if let Some(sasl) = security::rskafka_sasl(&settings.security) {
        builder = builder.sasl_config(sasl);
    }
    builder.build().await.map_err(|e| ConnectError::DataClient {
        servers: settings.bootstrap_servers.join(","),
        reason: e.to_string(),
    })
}
