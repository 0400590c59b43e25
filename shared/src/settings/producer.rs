//! The producer variables every service that writes to Kafka shares (batching, memory, codec,
//! time-outs, idempotence), declared once and turned into a [`ProducerConfig`] here.
//!
//! It owns the rules between the variables, as the Java producer checks them: more than one
//! request in flight per partition stays in order only with idempotence's sequence numbers
//! (without them we send one at a time), and `DELIVERY_TIMEOUT_MS` must cover
//! `LINGER_MS + REQUEST_TIMEOUT_MS`. It must not know which
//! topic a service writes. The one choice a reader may question: a `DELIVERY_TIMEOUT_MS` left
//! at its default is raised to that sum instead of failing, exactly as Java does, while an
//! explicit one that is too short is an error.

use super::{Origin, SettingsError, SettingsSource, Variable};
use crate::producer::{Compression, ProducerConfig};

/// `COMPRESSION`'s words, Kafka's `compression.type` names.
pub const COMPRESSION_CHOICES: &[(&str, Compression)] = &[
    ("none", Compression::None),
    ("gzip", Compression::Gzip),
    ("snappy", Compression::Snappy),
    ("lz4", Compression::Lz4),
    ("zstd", Compression::Zstd),
];

/// The most requests in flight per partition that Kafka keeps in order with idempotence: the
/// broker remembers the last five batches of each producer and partition.
pub const MAX_IN_FLIGHT_LIMIT: usize = 5;

/// The producer variables with their defaults (the same as [`ProducerConfig::default`]).
pub fn producer_variables() -> Vec<Variable> {
    vec![
        Variable::new(
            "LINGER_MS",
            "5",
            "Milliseconds a partition's batch waits for more records before it is sent (0-10000).",
        ),
        Variable::new(
            "BATCH_MAX_BYTES",
            "524288",
            "Bytes that make a batch full (1024-67108864).",
        ),
        Variable::new(
            "BUFFER_MEMORY_BYTES",
            "33554432",
            "Bytes of records accepted but not yet acknowledged (their encoded size plus what they hold in memory) before sending waits (1048576-1073741824).",
        ),
        Variable::new(
            "COMPRESSION",
            "none",
            "Batch compression: none, gzip, snappy (xerial-framed, as Java writes), lz4 (frame format) or zstd.",
        ),
        Variable::new(
            "REQUEST_TIMEOUT_MS",
            "30000",
            "Milliseconds to wait for the answer to one produce request before retrying it on a new connection (100-3600000).",
        ),
        Variable::new(
            "DELIVERY_TIMEOUT_MS",
            "120000",
            "Milliseconds a record may take to be acknowledged, retries included, before it counts as failed; at least LINGER_MS + REQUEST_TIMEOUT_MS (1000-3600000).",
        ),
        Variable::new(
            "ENABLE_IDEMPOTENCE",
            "1",
            "1: producer id, epoch and sequence numbers on every batch, so a retry is never written twice (needs acks=all, the only mode). 0: at-least-once, one request in flight per partition.",
        ),
        Variable::new(
            "MAX_IN_FLIGHT_PER_PARTITION",
            "5",
            "Produce requests in flight per partition, kept in order on retry (1-5; with ENABLE_IDEMPOTENCE=0 always 1).",
        ),
    ]
}

/// Reads and cross-checks the variables of [`producer_variables`].
pub fn producer_config(source: &SettingsSource) -> Result<ProducerConfig, SettingsError> {
    let linger = source.millis("LINGER_MS", 0, 10_000)?;
    let request_timeout = source.millis("REQUEST_TIMEOUT_MS", 100, 3_600_000)?;
    let mut delivery_timeout = source.millis("DELIVERY_TIMEOUT_MS", 1000, 3_600_000)?;
    let floor = linger + request_timeout;
    if delivery_timeout < floor {
        if source.origin("DELIVERY_TIMEOUT_MS") != Origin::Default {
            return Err(SettingsError::invalid(
                "DELIVERY_TIMEOUT_MS",
                &source.raw("DELIVERY_TIMEOUT_MS"),
                format!(
                    "at least LINGER_MS + REQUEST_TIMEOUT_MS ({} ms), up to 3600000",
                    floor.as_millis()
                ),
            ));
        }
        delivery_timeout = floor;
    }
    let idempotence = source.flag("ENABLE_IDEMPOTENCE")?;
    let max_in_flight_per_partition: usize =
        source.integer("MAX_IN_FLIGHT_PER_PARTITION", 1, MAX_IN_FLIGHT_LIMIT)?;
    // Without sequence numbers a retried request could land behind a later one, so a producer
    // without idempotence sends one request per partition at a time, whatever is set here.
    let max_in_flight_per_partition = if idempotence {
        max_in_flight_per_partition
    } else {
        1
    };
    Ok(ProducerConfig {
        linger,
        batch_max_bytes: source.integer("BATCH_MAX_BYTES", 1024, 64 * 1024 * 1024)?,
        buffer_memory_bytes: source.integer("BUFFER_MEMORY_BYTES", 1 << 20, 1 << 30)?,
        compression: source.choice("COMPRESSION", COMPRESSION_CHOICES)?,
        delivery_timeout,
        request_timeout,
        idempotence,
        max_in_flight_per_partition,
        ..ProducerConfig::default()
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<ProducerConfig, SettingsError> {
        let environment: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let source = SettingsSource::load(
            &producer_variables(),
            std::path::Path::new("/nonexistent/producer-test.env"),
            environment,
        )?;
        producer_config(&source)
    }

    #[test]
    fn defaults_are_the_producer_config_defaults() {
        assert_eq!(config(&[]), Ok(ProducerConfig::default()));
    }

    #[test]
    fn every_kafka_codec_name_is_accepted() {
        for (word, codec) in COMPRESSION_CHOICES {
            let parsed = config(&[("COMPRESSION", word)]).map(|c| c.compression);
            assert_eq!(parsed, Ok(*codec), "{word}");
        }
        let err = config(&[("COMPRESSION", "brotli")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for COMPRESSION: \"brotli\" (accepted: one of none, gzip, snappy, lz4, zstd)"
        );
    }

    #[test]
    fn explicit_delivery_timeout_shorter_than_linger_plus_request_timeout_is_refused() {
        let err = config(&[
            ("LINGER_MS", "100"),
            ("REQUEST_TIMEOUT_MS", "5000"),
            ("DELIVERY_TIMEOUT_MS", "5000"),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for DELIVERY_TIMEOUT_MS: \"5000\" (accepted: at least LINGER_MS + REQUEST_TIMEOUT_MS (5100 ms), up to 3600000)"
        );
    }

    #[test]
    fn default_delivery_timeout_is_raised_to_cover_a_long_request_timeout() {
        // Java's KafkaProducer does the same when delivery.timeout.ms was not set.
        let config = config(&[("REQUEST_TIMEOUT_MS", "200000")]).expect("valid");
        assert_eq!(config.delivery_timeout, Duration::from_millis(200_005));
    }

    #[test]
    fn idempotence_off_means_one_request_in_flight_per_partition() {
        let config = config(&[("ENABLE_IDEMPOTENCE", "0")]).expect("valid");
        assert!(!config.idempotence);
        assert_eq!(config.max_in_flight_per_partition, 1);
    }

    #[test]
    fn several_in_flight_without_idempotence_still_sends_one_at_a_time() {
        let config = config(&[
            ("ENABLE_IDEMPOTENCE", "false"),
            ("MAX_IN_FLIGHT_PER_PARTITION", "3"),
        ])
        .expect("valid");
        assert_eq!(config.max_in_flight_per_partition, 1);
    }

    #[test]
    fn in_flight_above_five_is_refused() {
        let err = config(&[("MAX_IN_FLIGHT_PER_PARTITION", "6")]).unwrap_err();
        assert!(
            err.to_string().contains("MAX_IN_FLIGHT_PER_PARTITION"),
            "{err}"
        );
    }
}
