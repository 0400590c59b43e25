//! Our own Kafka wire connection, for the APIs rskafka does not expose (topic configs, the
//! consumer-group coordinator, the producer's pipelined Produce, the fetcher's Fetch).
//!
//! It owns one socket (plain or TLS, optionally SASL-authenticated), frames requests, checks
//! correlation ids and negotiates API versions; and it owns the rule that no byte from a broker
//! is trusted: a response frame is bounded by [`MAX_RESPONSE_FRAME_BYTES`] and its structure is
//! checked against its bytes ([`check_response`]) before `kafka-protocol` decodes it. It must
//! not retry or interpret broker error codes: callers classify those. One request is in flight
//! at a time (`&mut self`), as the Kafka protocol requires per connection — callers that must
//! not wait behind a blocking request (JoinGroup) open a second connection.

mod connection;
mod frame;
mod sasl;
pub mod scram;
mod shape;
pub mod shapes;
mod transport;

pub use connection::{ApiVersionRange, BrokerConnection, WireError};
pub use frame::{FrameError, MAX_RESPONSE_FRAME_BYTES, read_frame};
pub use shape::{Field, FrameFault, Kind, ResponseError, Schema, check_response, decode_response};
pub(crate) use transport::Stream;
