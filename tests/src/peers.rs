//! The real peer clients: confluent-kafka (librdkafka) and kafka-python, run from the
//! virtualenv that `scripts/peers.sh` makes.
//!
//! Tests hand a peer a short Python program and read what it prints; the peer is a separate
//! process, so what it sees of our protocol work is exactly what a user's client would see.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The virtualenv's Python, or a panic that says how to make it.
pub fn python() -> PathBuf {
    let python = super::cache_dir().join("venv/bin/python");
    assert!(
        python.exists(),
        "the peer-client virtualenv is missing at {}: run scripts/peers.sh",
        python.display()
    );
    python
}

/// Runs a Python program with the given arguments and returns its output; panics with the
/// program's stderr if it fails.
pub fn run_python(program: &str, args: &[&str]) -> Output {
    let output = Command::new(python())
        .arg("-c")
        .arg(program)
        .args(args)
        .output()
        .expect("the virtualenv's python runs");
    assert!(
        output.status.success(),
        "peer program failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
