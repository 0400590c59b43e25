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

/// A peer group member running `tests/peers/group_peer.py`, reporting what it sees.
pub struct PeerMember {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    /// The peer's current assignment as it last reported it.
    pub assigned: Vec<(String, i32)>,
    /// Every record value it reported.
    pub records: Vec<String>,
    /// What each of its revocations listed, in order (confluent-kafka only).
    pub revoked: Vec<Vec<(String, i32)>>,
}

/// Which peer client to run.
#[derive(Debug, Clone, Copy)]
pub enum PeerClient {
    Confluent,
    KafkaPython,
}

impl PeerMember {
    pub fn start(
        client: PeerClient,
        bootstrap: &str,
        group: &str,
        topic: &str,
        instance_id: Option<&str>,
    ) -> Self {
        Self::start_with(client, bootstrap, group, topic, instance_id, "range")
    }

    /// As `start`, with `partition.assignment.strategy` (confluent-kafka only).
    pub fn start_with(
        client: PeerClient,
        bootstrap: &str,
        group: &str,
        topic: &str,
        instance_id: Option<&str>,
        strategy: &str,
    ) -> Self {
        use tokio::io::AsyncBufReadExt;
        let script = super::workspace_root().join("tests/peers/group_peer.py");
        let mut command = tokio::process::Command::new(python());
        command
            .arg(script)
            .arg("--client")
            .arg(match client {
                PeerClient::Confluent => "confluent",
                PeerClient::KafkaPython => "kafka-python",
            })
            .args(["--bootstrap", bootstrap, "--group", group, "--topic", topic])
            .args(["--strategy", strategy])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(id) = instance_id {
            command.args(["--instance-id", id]);
        }
        let mut child = command.spawn().expect("the peer starts");
        let stdout = child.stdout.take().expect("piped stdout");
        Self {
            child,
            lines: tokio::io::BufReader::new(stdout).lines(),
            assigned: Vec::new(),
            records: Vec::new(),
            revoked: Vec::new(),
        }
    }

    /// Reads the peer's reports until `done` holds (up to `limit`, a safety net).
    pub async fn until(&mut self, limit: std::time::Duration, done: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + limit;
        while !done(self) {
            let line = match tokio::time::timeout_at(deadline, self.lines.next_line()).await {
                Ok(Ok(Some(line))) => line,
                Ok(Ok(None)) => panic!("the peer exited early"),
                Ok(Err(e)) => panic!("reading the peer: {e}"),
                Err(_) => panic!(
                    "peer condition not reached within {limit:?}; assigned {:?}, {} records",
                    self.assigned,
                    self.records.len()
                ),
            };
            self.absorb(&line);
        }
    }

    /// Takes in whatever the peer reports within `limit`, requiring nothing.
    pub async fn absorb_for(&mut self, limit: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout_at(deadline, self.lines.next_line()).await
        {
            self.absorb(&line);
        }
    }

    fn absorb(&mut self, line: &str) {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            return;
        };
        if let Some(assigned) = value.get("assigned").and_then(|a| a.as_array()) {
            self.assigned = pairs(assigned);
        }
        if let Some(revoked) = value.get("revoked").and_then(|a| a.as_array()) {
            self.revoked.push(pairs(revoked));
        }
        if let Some(record) = value.get("record").and_then(|r| r.as_str()) {
            self.records.push(record.to_owned());
        }
    }

    /// Closes the peer's stdin (it commits and closes its consumer) and waits for it.
    pub async fn close(mut self) {
        drop(self.child.stdin.take());
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout(std::time::Duration::from_secs(30), self.lines.next_line()).await
        {
            self.absorb(&line);
        }
        let _ = self.child.wait().await;
    }
}

/// `[[topic, partition], ...]` as the peer reports partitions.
fn pairs(list: &[serde_json::Value]) -> Vec<(String, i32)> {
    list.iter()
        .filter_map(|pair| {
            Some((
                pair.get(0)?.as_str()?.to_owned(),
                i32::try_from(pair.get(1)?.as_i64()?).ok()?,
            ))
        })
        .collect()
}
