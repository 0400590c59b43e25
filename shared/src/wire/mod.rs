//! Our own Kafka wire connection, for the APIs rskafka does not expose (topic configs today,
//! the consumer-group coordinator next).
//!
//! It owns one socket (plain or TLS, optionally SASL-authenticated), frames requests, checks
//! correlation ids and negotiates API versions. It must not retry or interpret broker error
//! codes: callers classify those. One request is in flight at a time (`&mut self`), as the
//! Kafka protocol requires per connection — callers that must not wait behind a blocking
//! request (JoinGroup) open a second connection.

mod connection;
mod sasl;
pub mod scram;
mod transport;

pub use connection::{ApiVersionRange, BrokerConnection, WireError};
pub(crate) use transport::Stream;
