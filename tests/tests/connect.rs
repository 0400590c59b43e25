//! Reaching brokers: a clear error naming every address tried, and a working data client.

use std::time::Duration;

use integration_tests::broker::free_port;
use integration_tests::{shared_broker, unique_name};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;
use shared::admin::{TopicAdmin, TopicSpec};
use shared::connect::{self, ConnectError};
use shared::settings::ConnectionSettings;

#[tokio::test]
async fn unreachable_brokers_are_each_named_in_the_error() {
    let first = format!("127.0.0.1:{}", free_port());
    let second = format!("127.0.0.1:{}", free_port());
    let settings =
        ConnectionSettings::plaintext(vec![first.clone(), second.clone()], "connect-test");
    let err = connect::broker_connection(&settings, Duration::from_millis(800))
        .await
        .expect_err("nothing listens there");
    assert!(matches!(err, ConnectError::Unreachable { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.starts_with("could not reach any broker of BOOTSTRAP_SERVERS within"),
        "{message}"
    );
    assert!(
        message.contains(&first) && message.contains(&second),
        "{message}"
    );
    assert!(message.contains("refused"), "{message}");
}

#[tokio::test]
async fn a_dead_address_before_a_live_one_is_skipped() {
    let dead = format!("127.0.0.1:{}", free_port());
    let settings =
        ConnectionSettings::plaintext(vec![dead, shared_broker().bootstrap()], "connect-test");
    let connection = connect::broker_connection(&settings, Duration::from_secs(10))
        .await
        .expect("the live broker answers");
    assert_eq!(connection.address(), shared_broker().bootstrap());
}

#[tokio::test]
async fn the_data_client_round_trips_a_record() {
    let settings = shared_broker().connection_settings("connect-test");
    let topic = unique_name("roundtrip");
    TopicAdmin::connect(&settings, Duration::from_secs(10))
        .await
        .expect("admin")
        .create_topics(&[TopicSpec::new(&topic, 1, 1)])
        .await
        .expect("create");

    let client = connect::data_client(&settings, Duration::from_secs(10))
        .await
        .expect("data client");
    let partition = client
        .partition_client(&topic, 0, UnknownTopicHandling::Retry)
        .await
        .expect("partition client");
    let record = Record {
        key: Some(b"item-1".to_vec()),
        value: Some(b"{\"hello\":1}".to_vec()),
        headers: Default::default(),
        timestamp: chrono::Utc::now(),
    };
    let offsets = partition
        .produce(vec![record], Compression::NoCompression)
        .await
        .expect("produce");
    assert_eq!(offsets, vec![0]);
    let (records, high_watermark) = partition
        .fetch_records(0, 1..1_000_000, 1_000)
        .await
        .expect("fetch");
    assert_eq!(high_watermark, 1);
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].record.value.as_deref(),
        Some(&b"{\"hello\":1}"[..])
    );
}
