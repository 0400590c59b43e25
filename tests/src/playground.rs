//! What the playground tests need beside the pipeline harness: the control plane's topics
//! under unique names, plain HTTP requests to the analytics endpoint (with any header a
//! browser or an attacker might send), and the control topic's end offset, which says
//! whether anything was written.
//!
//! Only mechanism: what a response should be is each test's business.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rskafka::client::partition::{OffsetAt, UnknownTopicHandling};
use shared::admin::{TopicAdmin, TopicSpec};
use shared::settings::ConnectionSettings;

use crate::pipeline::{Pipeline, Service};
use crate::unique_name;

/// Unique control and status topics, created compacted with one partition, and every service
/// of `pipeline` pointed at them (analytics also at the pipeline's inventory group).
pub async fn with_control_plane(pipeline: &mut Pipeline, bootstrap: &str) -> (String, String) {
    let base = unique_name("playground");
    let (control, status) = (format!("{base}-control"), format!("{base}-status"));
    create_compacted(bootstrap, &control).await;
    create_compacted(bootstrap, &status).await;
    for service in [Service::Producer, Service::Inventory, Service::Analytics] {
        pipeline.set(service, "CONTROL_TOPIC", &control);
        pipeline.set(service, "STATUS_TOPIC", &status);
    }
    let group = pipeline.names.inventory_group.clone();
    pipeline.set(Service::Analytics, "INVENTORY_GROUP_ID", group);
    (control, status)
}

pub async fn create_compacted(bootstrap: &str, topic: &str) {
    let mut admin = TopicAdmin::connect(&connection(bootstrap), Duration::from_secs(60))
        .await
        .expect("admin connects");
    admin
        .create_topics(&[TopicSpec::new(topic, 1, 1).with_config("cleanup.policy", "compact")])
        .await
        .expect("the topic is created");
    admin
        .wait_for_topics(
            &[topic],
            &shared::settings::TopicWaitSettings {
                timeout: Duration::from_secs(60),
                interval: Duration::from_millis(100),
                skip: false,
            },
        )
        .await
        .expect("the topic exists");
}

pub async fn delete_topic(bootstrap: &str, topic: &str) {
    let client = shared::connect::data_client(&connection(bootstrap), Duration::from_secs(60))
        .await
        .expect("a data client");
    client
        .controller_client()
        .expect("a controller client")
        .delete_topic(topic, 10_000)
        .await
        .expect("the topic is deleted");
}

fn connection(bootstrap: &str) -> ConnectionSettings {
    ConnectionSettings::plaintext(vec![bootstrap.to_owned()], "playground-test")
}

/// The end offset of partition 0 of a one-partition topic.
pub async fn end_offset(bootstrap: &str, topic: &str) -> i64 {
    let client = shared::connect::data_client(&connection(bootstrap), Duration::from_secs(60))
        .await
        .expect("a data client");
    client
        .partition_client(topic, 0, UnknownTopicHandling::Retry)
        .await
        .expect("a partition client")
        .get_offset(OffsetAt::Latest)
        .await
        .expect("the end offset")
}

/// An HTTP answer: status code and body (parsed as JSON when it is JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// One HTTP/1.1 request with exactly these headers (plus Content-Length and
/// `Connection: close`); `None` when nothing answers.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<Answer> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .ok()?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut response = Vec::new();
    // A refused oversized body may be answered before it is read; the answer still arrives.
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let (status_line, rest) = text.split_once("\r\n")?;
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let body = rest
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some(Answer {
        status,
        body: dechunk(&body),
    })
}

/// warp answers with chunked encoding; the tests only need the payload.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size, after)) = rest.split_once("\r\n") else {
            return if out.is_empty() { body.to_owned() } else { out };
        };
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            return if out.is_empty() { body.to_owned() } else { out };
        };
        if size == 0 || after.len() < size {
            return out;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
}

/// A write from this test's "browser": the page's own Host and Origin, JSON; `extra` adds
/// headers or replaces those.
pub fn post_json(port: u16, path: &str, body: &str, extra: &[(&str, &str)]) -> Answer {
    let host = format!("127.0.0.1:{port}");
    let origin = format!("http://{host}");
    let mut headers: Vec<(&str, &str)> = [
        ("Host", host.as_str()),
        ("Origin", origin.as_str()),
        ("Content-Type", "application/json"),
    ]
    .into_iter()
    .filter(|(name, _)| !extra.iter().any(|(e, _)| e.eq_ignore_ascii_case(name)))
    .collect();
    headers.extend_from_slice(extra);
    request(port, "POST", path, &headers, body.as_bytes()).expect("analytics answers")
}

pub fn get_json(port: u16, path: &str) -> serde_json::Value {
    let host = format!("127.0.0.1:{port}");
    request(port, "GET", path, &[("Host", &host)], b"")
        .map(|a| a.json())
        .unwrap_or(serde_json::Value::Null)
}
