//! `SECURITY_PROTOCOL=SSL` against a broker whose listener speaks TLS only: our own connection
//! (admin) and rskafka's data path both verify the broker against `SSL_CA_LOCATION`, and a
//! client without that CA is refused.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use integration_tests::broker::ServerTls;
use integration_tests::{TestBroker, unique_name};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;
use shared::admin::{TopicAdmin, TopicOutcome, TopicSpec};
use shared::connect;

/// A throw-away CA and a server certificate for 127.0.0.1, made with the openssl CLI.
fn make_certificates(dir: &Path) -> ServerTls {
    let run = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            status.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("write ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
    ServerTls {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        ca: dir.join("ca.pem"),
    }
}

#[tokio::test]
async fn admin_and_data_paths_work_over_tls_verified_by_the_configured_ca() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = TestBroker::start_tls(make_certificates(dir.path()));
    let settings = broker.connection_settings("tls-test");

    let topic = unique_name("tls");
    let outcome = TopicAdmin::connect(&settings, Duration::from_secs(10))
        .await
        .expect("admin over TLS")
        .create_topics(&[TopicSpec::new(&topic, 1, 1)])
        .await
        .expect("create over TLS");
    assert_eq!(outcome, vec![(topic.clone(), TopicOutcome::Created)]);

    let client = connect::data_client(&settings, Duration::from_secs(10))
        .await
        .expect("rskafka over TLS");
    let partition = client
        .partition_client(&topic, 0, UnknownTopicHandling::Retry)
        .await
        .expect("partition client");
    let record = Record {
        key: None,
        value: Some(b"secret".to_vec()),
        headers: Default::default(),
        timestamp: chrono::Utc::now(),
    };
    partition
        .produce(vec![record], Compression::NoCompression)
        .await
        .expect("produce");
    let (records, _) = partition
        .fetch_records(0, 1..1_000_000, 1_000)
        .await
        .expect("fetch");
    assert_eq!(records[0].record.value.as_deref(), Some(&b"secret"[..]));

    // Another CA does not vouch for this broker: the handshake fails, naming TLS.
    let other = tempfile::tempdir().expect("temp dir");
    let stranger = make_certificates(other.path());
    let mut untrusting = settings.clone();
    untrusting.security.ca_location = Some(stranger.ca);
    let err = connect::broker_connection(&untrusting, Duration::from_secs(2))
        .await
        .expect_err("an unknown CA is refused");
    assert!(err.to_string().contains("TLS"), "{err}");
}
