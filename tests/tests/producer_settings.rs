//! The producer variables both writing services share, checked on the real binaries: a bad
//! value exits 2 naming the variable, the value and what is accepted.

use integration_tests::cli::ServiceCli;
use integration_tests::pipeline::{Service, service_binary};

fn check(service: Service, name: &str, env_file: &str) {
    let binary = service_binary(service);
    let cli = ServiceCli {
        binary: binary.to_str().expect("a UTF-8 path"),
        name,
        env_file,
    };
    cli.assert_rejects(
        "COMPRESSION",
        "brotli",
        "invalid value for COMPRESSION: \"brotli\" (accepted: one of none, gzip, snappy, lz4, zstd)",
    );
    cli.assert_rejects(
        "MAX_IN_FLIGHT_PER_PARTITION",
        "6",
        "invalid value for MAX_IN_FLIGHT_PER_PARTITION: \"6\" (accepted: a whole number from 1 to 5)",
    );
    cli.assert_rejects(
        "ENABLE_IDEMPOTENCE",
        "maybe",
        "invalid value for ENABLE_IDEMPOTENCE: \"maybe\" (accepted: 1 or 0 (also true/false, yes/no, on/off))",
    );
    // LINGER_MS is set, not read from the env file: the two services' files differ (5, 20).
    let output = cli.run(
        &["--check-config"],
        &[
            ("LINGER_MS", "5"),
            ("REQUEST_TIMEOUT_MS", "60000"),
            ("DELIVERY_TIMEOUT_MS", "30000"),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim_end(),
        format!(
            "{name}: configuration error: invalid value for DELIVERY_TIMEOUT_MS: \"30000\" (accepted: at least LINGER_MS + REQUEST_TIMEOUT_MS (60005 ms), up to 3600000)"
        )
    );
    let output = cli.run(&["--check-config"], &[("COMPRESSION", "zstd")]);
    let effective = String::from_utf8_lossy(&output.stdout);
    assert!(
        effective.contains("COMPRESSION=zstd") && effective.contains("ENABLE_IDEMPOTENCE=1"),
        "{effective}"
    );
}

#[test]
fn producer_order_validates_the_producer_variables() {
    check(
        Service::Producer,
        "producer-order",
        "services/producer_order/producer.env",
    );
}

#[test]
fn inventory_validates_its_output_producers_variables() {
    check(
        Service::Inventory,
        "inventory-consumer",
        "services/inventory_consumer/inventory.env",
    );
}
