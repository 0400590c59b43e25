//! The integration-test harness: a private, real broker per test binary, uniquely named topics
//! so tests run in parallel, the Python peer clients, and checks shared by the services'
//! command-line tests.
//!
//! Nothing here mocks Kafka. The broker is Nisshi (or its Tansu fallback) installed by
//! `scripts/broker.sh install`; the peers come from the virtualenv `scripts/peers.sh` makes.

pub mod broker;
pub mod browser;
pub mod cli;
pub mod fake_broker;
pub mod group;
pub mod names;
pub mod peers;
pub mod pipeline;
pub mod playground;
pub mod proxy;
pub mod topic;

pub use broker::{TestBroker, shared_broker};
pub use names::unique_name;

/// The workspace root (tests run scripts and binaries relative to it).
pub fn workspace_root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

/// The cache outside the clone where the scripts put the broker and the virtualenv.
pub fn cache_dir() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("STREAMING_KAFKA_CACHE") {
        return dir.into();
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    std::path::Path::new(&home).join(".cache/streaming-kafka")
}
