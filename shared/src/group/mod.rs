//! The group module holds our hand-written consumer-group member for Kafka's classic group
//! protocol: the embedded consumer-protocol bytes and the partition assignors the leader runs.

pub mod assignor;
pub mod protocol;
