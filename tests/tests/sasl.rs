//! SASL/SCRAM against a broker that requires it: our own connection (admin, producer) and
//! rskafka's data path authenticate with SCRAM-SHA-256 and SCRAM-SHA-512; a wrong password is
//! refused with an error that says so.

use std::time::Duration;

use integration_tests::broker::SaslUser;
use integration_tests::{TestBroker, unique_name};
use rskafka::client::partition::UnknownTopicHandling;
use shared::admin::{TopicAdmin, TopicOutcome, TopicSpec};
use shared::connect;
use shared::producer::{OutgoingRecord, Producer, ProducerConfig};
use shared::settings::SaslMechanism;

#[tokio::test]
async fn scram_users_reach_admin_producer_and_data_paths_and_a_wrong_password_is_refused() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = TestBroker::start_sasl(
        data.path(),
        SaslUser {
            name: "alice".into(),
            password: "s3cret".into(),
        },
    );
    let topic = unique_name("sasl");
    for mechanism in [SaslMechanism::ScramSha256, SaslMechanism::ScramSha512] {
        let mut settings = broker.connection_settings("sasl-test");
        if let Some(sasl) = settings.security.sasl.as_mut() {
            sasl.mechanism = mechanism;
        }
        let mut admin = TopicAdmin::connect(&settings, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("{mechanism:?}: {e}"));
        let created = admin
            .create_topics(&[TopicSpec::new(&topic, 1, 1)])
            .await
            .expect("create");
        assert!(matches!(
            created[0].1,
            TopicOutcome::Created | TopicOutcome::AlreadyExisted { .. }
        ));

        let producer = Producer::new(
            &settings,
            &topic,
            ProducerConfig::default(),
            Duration::from_secs(10),
        )
        .await
        .expect("producer");
        let ticket = producer
            .send(OutgoingRecord {
                key: None,
                value: b"authenticated".to_vec(),
                headers: Vec::new(),
                timestamp: chrono::Utc::now(),
                partition: Some(0),
            })
            .await
            .expect("queued");
        ticket.delivered().await.expect("acknowledged");

        let client = connect::data_client(&settings, Duration::from_secs(10))
            .await
            .expect("rskafka");
        let partition = client
            .partition_client(&topic, 0, UnknownTopicHandling::Retry)
            .await
            .expect("partition");
        let (records, _) = partition
            .fetch_records(0, 1..1_000_000, 500)
            .await
            .expect("fetch");
        assert!(
            records
                .iter()
                .all(|r| r.record.value.as_deref() == Some(&b"authenticated"[..]))
        );
        assert!(!records.is_empty());
    }

    let mut wrong = broker.connection_settings("sasl-test");
    if let Some(sasl) = wrong.security.sasl.as_mut() {
        sasl.password = "guess".into();
    }
    let err = connect::broker_connection(&wrong, Duration::from_secs(3))
        .await
        .expect_err("a wrong password is refused");
    assert!(err.to_string().contains("SASL"), "{err}");
}
