//! What the streaming-kafka services share: settings, event schemas, telemetry, shutdown and
//! the Kafka plumbing (connections, topic admin).
//!
//! Mechanism lives here, policy in the services: this crate never knows an order's business
//! rules, and the services never speak the wire protocol themselves.

pub mod admin;
pub mod backoff;
pub mod cli;
pub mod connect;
pub mod control;
pub mod events;
pub mod group;
pub mod memory;
pub mod producer;
pub mod security;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
pub mod wire;
