//! The embedded "consumer" protocol: the bytes a member puts in JoinGroup metadata
//! (`Subscription`) and the leader puts in SyncGroup assignments (`Assignment`).
//!
//! It owns only the translation between those bytes and plain Rust structs; it must not decide
//! anything about assignment or membership. The bodies are `kafka-protocol`'s generated structs,
//! but the big-endian i16 version prefix is ours to write and read (the crate leaves it out), and
//! input reaches the crate only after `lengths` has proved its declared lengths fit.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use lengths::{check_assignment_lengths, check_subscription_lengths};

mod lengths;

/// Topic name → its partitions, sorted ascending.
pub type TopicPartitions = BTreeMap<String, Vec<i32>>;

/// What a member sends in JoinGroup: the topics it wants and, from v1, what it owns now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    pub topics: Vec<String>,
    /// Assignor-specific bytes; written as empty (never null) bytes.
    pub user_data: Vec<u8>,
    /// Partitions the member holds going into this rebalance (v1+, cooperative assignors).
    pub owned_partitions: TopicPartitions,
    /// Generation in which `owned_partitions` were assigned (v2+). Kafka's "none yet" is
    /// [`NO_GENERATION`]; note that `Default` gives 0, so set it explicitly.
    pub generation_id: i32,
    /// The member's `client.rack` (v3+).
    pub rack_id: Option<String>,
}

/// What the leader hands a member in SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    pub partitions: TopicPartitions,
    pub user_data: Vec<u8>,
}

/// The subscription version we write: the newest, as Java and librdkafka do.
pub const SUBSCRIPTION_VERSION: i16 = 3;
/// The assignment version we write. Versions 0–3 share one layout; Java writes 3.
pub const ASSIGNMENT_VERSION: i16 = 3;
/// Generation id meaning "not a member of any generation yet" (the schema's default).
pub const NO_GENERATION: i32 = -1;

/// Which of the two embedded messages an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddedMessage {
    Subscription,
    Assignment,
}

impl fmt::Display for EmbeddedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Subscription => "consumer subscription",
            Self::Assignment => "consumer assignment",
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("{message} is {len} byte(s) long, too short for its i16 version prefix")]
    MissingVersion {
        message: EmbeddedMessage,
        len: usize,
    },
    #[error("{message} has negative version {version}")]
    NegativeVersion {
        message: EmbeddedMessage,
        version: i16,
    },
    #[error("{message} v{version} is malformed: {reason}")]
    Malformed {
        message: EmbeddedMessage,
        version: i16,
        reason: String,
    },
    #[error("{message} cannot be encoded at v{version}: {reason}")]
    Encode {
        message: EmbeddedMessage,
        version: i16,
        reason: String,
    },
}

/// Encodes `subscription` at [`SUBSCRIPTION_VERSION`].
///
/// Topics are written sorted and de-duplicated, owned partitions sorted, and user data as
/// empty bytes rather than null: librdkafka does the same because old brokers' tooling cannot
/// parse null bytes here.
pub fn encode_subscription(subscription: &Subscription) -> Result<Vec<u8>, ProtocolError> {
    encode_subscription_at(subscription, SUBSCRIPTION_VERSION)
}

/// Encodes `subscription` at an explicit version 0–3; fields newer than `version` are dropped.
pub fn encode_subscription_at(
    subscription: &Subscription,
    version: i16,
) -> Result<Vec<u8>, ProtocolError> {
    let mut topics = subscription.topics.clone();
    topics.sort();
    topics.dedup();
    let owned = subscription
        .owned_partitions
        .iter()
        .map(|(topic, partitions)| {
            OwnedTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(sorted_unique(partitions))
        })
        .collect();
    let body = ConsumerProtocolSubscription::default()
        .with_topics(topics.into_iter().map(StrBytes::from_string).collect())
        .with_user_data(Some(Bytes::copy_from_slice(&subscription.user_data)))
        .with_owned_partitions(owned)
        .with_generation_id(subscription.generation_id)
        .with_rack_id(subscription.rack_id.clone().map(StrBytes::from_string));
    prefixed(&body, version, EmbeddedMessage::Subscription)
}

/// Decodes a member's subscription.
///
/// A version above 3 is read with the v3 layout and anything after it ignored (the schema
/// promises new versions only append); a negative version is an error. Null user data reads as
/// empty. kafka-python's v0 (topics and empty user data) decodes with no owned partitions and
/// generation [`NO_GENERATION`]. Topics keep their wire order.
pub fn decode_subscription(bytes: &[u8]) -> Result<Subscription, ProtocolError> {
    let message = EmbeddedMessage::Subscription;
    let (version, mut body) = split_version(bytes, message)?;
    let layout = version.min(SUBSCRIPTION_VERSION);
    let malformed = |reason: String| ProtocolError::Malformed {
        message,
        version,
        reason,
    };
    check_subscription_lengths(body, layout).map_err(malformed)?;
    let wire = ConsumerProtocolSubscription::decode(&mut body, layout)
        .map_err(|e| malformed(e.to_string()))?;
    Ok(Subscription {
        topics: wire.topics.iter().map(|t| t.to_string()).collect(),
        user_data: wire.user_data.map(|b| b.to_vec()).unwrap_or_default(),
        owned_partitions: collect_partitions(
            wire.owned_partitions
                .iter()
                .map(|t| (&*t.topic.0, t.partitions.as_slice())),
        ),
        generation_id: wire.generation_id,
        rack_id: wire.rack_id.map(|r| r.to_string()),
    })
}

/// Encodes `assignment` at [`ASSIGNMENT_VERSION`], user data as empty (never null) bytes.
pub fn encode_assignment(assignment: &Assignment) -> Result<Vec<u8>, ProtocolError> {
    encode_assignment_at(assignment, ASSIGNMENT_VERSION)
}

/// Encodes `assignment` at an explicit version 0–3 (all four share one layout).
pub fn encode_assignment_at(
    assignment: &Assignment,
    version: i16,
) -> Result<Vec<u8>, ProtocolError> {
    let assigned = assignment
        .partitions
        .iter()
        .map(|(topic, partitions)| {
            AssignedTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(sorted_unique(partitions))
        })
        .collect();
    let body = ConsumerProtocolAssignment::default()
        .with_assigned_partitions(assigned)
        .with_user_data(Some(Bytes::copy_from_slice(&assignment.user_data)));
    prefixed(&body, version, EmbeddedMessage::Assignment)
}

/// Decodes the assignment the leader sent us.
///
/// Zero bytes mean "nothing for you" (librdkafka leaders send that for members with no
/// partitions). Any version ≥ 0 is read with the v0 layout, since no version has changed it.
pub fn decode_assignment(bytes: &[u8]) -> Result<Assignment, ProtocolError> {
    if bytes.is_empty() {
        return Ok(Assignment::default());
    }
    let message = EmbeddedMessage::Assignment;
    let (version, mut body) = split_version(bytes, message)?;
    let malformed = |reason: String| ProtocolError::Malformed {
        message,
        version,
        reason,
    };
    check_assignment_lengths(body).map_err(malformed)?;
    let wire =
        ConsumerProtocolAssignment::decode(&mut body, 0).map_err(|e| malformed(e.to_string()))?;
    Ok(Assignment {
        partitions: collect_partitions(
            wire.assigned_partitions
                .iter()
                .map(|t| (&*t.topic.0, t.partitions.as_slice())),
        ),
        user_data: wire.user_data.map(|b| b.to_vec()).unwrap_or_default(),
    })
}

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

fn sorted_unique(partitions: &[i32]) -> Vec<i32> {
    let mut sorted = partitions.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
}

/// Folds wire entries into the map; a topic listed twice has its partitions merged.
fn collect_partitions<'a>(entries: impl Iterator<Item = (&'a str, &'a [i32])>) -> TopicPartitions {
    let mut map = TopicPartitions::new();
    for (topic, partitions) in entries {
        map.entry(topic.to_owned())
            .or_default()
            .extend_from_slice(partitions);
    }
    for partitions in map.values_mut() {
        *partitions = sorted_unique(partitions);
    }
    map
}

fn prefixed<M: Encodable>(
    body: &M,
    version: i16,
    message: EmbeddedMessage,
) -> Result<Vec<u8>, ProtocolError> {
    let mut out = version.to_be_bytes().to_vec();
    body.encode(&mut out, version)
        .map_err(|e| ProtocolError::Encode {
            message,
            version,
            reason: e.to_string(),
        })?;
    Ok(out)
}

fn split_version(bytes: &[u8], message: EmbeddedMessage) -> Result<(i16, &[u8]), ProtocolError> {
    let (prefix, body) = bytes
        .split_first_chunk::<2>()
        .ok_or(ProtocolError::MissingVersion {
            message,
            len: bytes.len(),
        })?;
    let version = i16::from_be_bytes(*prefix);
    if version < 0 {
        return Err(ProtocolError::NegativeVersion { message, version });
    }
    Ok((version, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partitions(entries: &[(&str, &[i32])]) -> TopicPartitions {
        entries
            .iter()
            .map(|(topic, parts)| (topic.to_string(), parts.to_vec()))
            .collect()
    }

    fn full_subscription() -> Subscription {
        Subscription {
            topics: vec!["inventory".into(), "orders".into()],
            user_data: vec![0xca, 0xfe],
            owned_partitions: partitions(&[("inventory", &[0, 2]), ("orders", &[1])]),
            generation_id: 12,
            rack_id: Some("rack-a".into()),
        }
    }

    fn sample_assignment() -> Assignment {
        Assignment {
            partitions: partitions(&[("inventory", &[3]), ("orders", &[0, 1, 5])]),
            user_data: vec![7, 7],
        }
    }

    #[test]
    fn subscription_round_trips_at_every_version() {
        let full = full_subscription();
        for version in 0..=3 {
            let bytes = encode_subscription_at(&full, version).expect("encodes");
            assert_eq!(bytes[..2], version.to_be_bytes(), "prefix at v{version}");
            let decoded = decode_subscription(&bytes).expect("decodes");
            // Fields newer than the version are not on the wire, so they come back as defaults.
            let expected = Subscription {
                owned_partitions: if version >= 1 {
                    full.owned_partitions.clone()
                } else {
                    TopicPartitions::new()
                },
                generation_id: if version >= 2 {
                    full.generation_id
                } else {
                    NO_GENERATION
                },
                rack_id: if version >= 3 {
                    full.rack_id.clone()
                } else {
                    None
                },
                ..full.clone()
            };
            assert_eq!(decoded, expected, "v{version}");
        }
    }

    #[test]
    fn assignment_round_trips_at_every_version() {
        let assignment = sample_assignment();
        for version in 0..=3 {
            let bytes = encode_assignment_at(&assignment, version).expect("encodes");
            assert_eq!(bytes[..2], version.to_be_bytes());
            assert_eq!(decode_assignment(&bytes).expect("decodes"), assignment);
        }
    }

    #[test]
    fn encoding_sorts_topics_and_partitions_and_writes_empty_user_data() {
        let subscription = Subscription {
            topics: vec!["orders".into(), "inventory".into(), "orders".into()],
            owned_partitions: partitions(&[("orders", &[4, 1, 4])]),
            generation_id: NO_GENERATION,
            ..Subscription::default()
        };
        let bytes = encode_subscription(&subscription).expect("encodes");
        let expected: Vec<u8> = [
            &[0x00, 0x03][..], // version 3
            &[0, 0, 0, 2],     // topics: 2 entries, sorted and de-duplicated
            &[0, 9],           // "inventory"
            b"inventory",
            &[0, 6], // "orders"
            b"orders",
            &[0, 0, 0, 0], // user data: empty bytes, length 0 (not -1 = null)
            &[0, 0, 0, 1], // owned partitions: 1 topic
            &[0, 6],       // "orders"
            b"orders",
            &[0, 0, 0, 2], // 2 partitions, sorted, duplicate dropped
            &[0, 0, 0, 1],
            &[0, 0, 0, 4],
            &[0xff, 0xff, 0xff, 0xff], // generation -1
            &[0xff, 0xff],             // rack id: null
        ]
        .concat();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn decodes_librdkafka_subscription_v3() {
        // As librdkafka writes it: always v3, empty (not null) user data, an empty owned
        // partitions array when it holds nothing, its generation, and a null rack.
        let bytes: Vec<u8> = [
            &[0x00, 0x03][..], // i16 version 3
            &[0, 0, 0, 1],     // topics: i32 count 1
            &[0, 6],           // string: i16 length 6 ...
            b"orders",         // ... "orders"
            &[0, 0, 0, 0],     // user data: i32 length 0
            &[0, 0, 0, 0],     // owned partitions: i32 count 0
            &[0, 0, 0, 5],     // generation id 5
            &[0xff, 0xff],     // rack id: i16 length -1 = null
        ]
        .concat();
        let decoded = decode_subscription(&bytes).expect("decodes");
        assert_eq!(
            decoded,
            Subscription {
                topics: vec!["orders".into()],
                user_data: vec![],
                owned_partitions: TopicPartitions::new(),
                generation_id: 5,
                rack_id: None,
            }
        );
    }

    #[test]
    fn decodes_kafka_python_subscription_v0() {
        // As kafka-python's range/roundrobin metadata() writes it: v0, topics, b'' user data.
        let bytes: Vec<u8> = [
            &[0x00, 0x00][..], // i16 version 0
            &[0, 0, 0, 2],     // topics: 2
            &[0, 6],
            b"orders",
            &[0, 8],
            b"payments",
            &[0, 0, 0, 0], // user data: empty
        ]
        .concat();
        // The same bytes produced by kafka-python 3.0.12 itself:
        //   ConsumerProtocolSubscription(0, ['orders', 'payments'], b'').encode().hex()
        let from_kafka_python = hex("00000000000200066f726465727300087061796d656e747300000000");
        assert_eq!(bytes, from_kafka_python);
        let decoded = decode_subscription(&bytes).expect("decodes");
        assert_eq!(decoded.topics, ["orders", "payments"]);
        assert!(decoded.user_data.is_empty());
        assert!(decoded.owned_partitions.is_empty());
        assert_eq!(decoded.generation_id, NO_GENERATION);
        assert_eq!(decoded.rack_id, None);
    }

    #[test]
    fn our_v3_subscription_matches_kafka_pythons_bytes() {
        // kafka-python 3.0.12:
        //   ConsumerProtocolSubscription(version=3, topics=['orders'], user_data=b'',
        //     owned_partitions=[('orders', [1])], generation_id=7, rack_id=None).encode().hex()
        let from_kafka_python = hex(
            "00030000000100066f7264657273000000000000000100066f7264657273000000010000000100000007ffff",
        );
        let ours = encode_subscription(&Subscription {
            topics: vec!["orders".into()],
            owned_partitions: partitions(&[("orders", &[1])]),
            generation_id: 7,
            ..Subscription::default()
        })
        .expect("encodes");
        assert_eq!(ours, from_kafka_python);
    }

    #[test]
    fn decodes_v0_assignments_from_librdkafka_and_kafka_python() {
        // Both write assignment v0: partitions per topic, then empty user data.
        let bytes: Vec<u8> = [
            &[0x00, 0x00][..], // i16 version 0
            &[0, 0, 0, 1],     // assigned partitions: 1 topic
            &[0, 6],
            b"orders",
            &[0, 0, 0, 2], // 2 partitions
            &[0, 0, 0, 0], // partition 0
            &[0, 0, 0, 2], // partition 2
            &[0, 0, 0, 0], // user data: empty
        ]
        .concat();
        // kafka-python 3.0.12: ConsumerProtocolAssignment(0, [('orders', [0, 2])], b'').encode().hex()
        assert_eq!(
            bytes,
            hex("00000000000100066f726465727300000002000000000000000200000000")
        );
        let decoded = decode_assignment(&bytes).expect("decodes");
        assert_eq!(decoded.partitions, partitions(&[("orders", &[0, 2])]));
        assert!(decoded.user_data.is_empty());
    }

    #[test]
    fn zero_length_assignment_is_empty() {
        assert_eq!(decode_assignment(&[]), Ok(Assignment::default()));
    }

    #[test]
    fn null_user_data_reads_as_empty() {
        let subscription: Vec<u8> = [
            &[0x00, 0x00][..],
            &[0, 0, 0, 0],             // no topics
            &[0xff, 0xff, 0xff, 0xff], // user data: null
        ]
        .concat();
        assert!(
            decode_subscription(&subscription)
                .expect("decodes")
                .user_data
                .is_empty()
        );
        let assignment: Vec<u8> =
            [&[0x00, 0x01][..], &[0, 0, 0, 0], &[0xff, 0xff, 0xff, 0xff]].concat();
        assert_eq!(decode_assignment(&assignment), Ok(Assignment::default()));
    }

    #[test]
    fn newer_subscription_version_is_read_with_the_v3_layout() {
        let mut bytes = encode_subscription(&full_subscription()).expect("encodes");
        bytes[..2].copy_from_slice(&7i16.to_be_bytes());
        bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]); // a field v7 might have added
        assert_eq!(decode_subscription(&bytes), Ok(full_subscription()));
    }

    #[test]
    fn newer_assignment_version_is_read_with_the_v0_layout() {
        let mut bytes = encode_assignment(&sample_assignment()).expect("encodes");
        bytes[..2].copy_from_slice(&9i16.to_be_bytes());
        bytes.push(0x42);
        assert_eq!(decode_assignment(&bytes), Ok(sample_assignment()));
    }

    #[test]
    fn negative_versions_are_rejected() {
        let mut bytes = encode_subscription(&full_subscription()).expect("encodes");
        bytes[..2].copy_from_slice(&(-1i16).to_be_bytes());
        assert_eq!(
            decode_subscription(&bytes),
            Err(ProtocolError::NegativeVersion {
                message: EmbeddedMessage::Subscription,
                version: -1
            })
        );
        let mut bytes = encode_assignment(&sample_assignment()).expect("encodes");
        bytes[..2].copy_from_slice(&i16::MIN.to_be_bytes());
        assert!(matches!(
            decode_assignment(&bytes),
            Err(ProtocolError::NegativeVersion { .. })
        ));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let subscription = encode_subscription(&full_subscription()).expect("encodes");
        for len in 0..subscription.len() {
            assert!(
                decode_subscription(&subscription[..len]).is_err(),
                "subscription cut to {len} bytes"
            );
        }
        let assignment = encode_assignment(&sample_assignment()).expect("encodes");
        // Zero bytes is the legitimate empty assignment; every other cut is an error.
        for len in 1..assignment.len() {
            assert!(
                decode_assignment(&assignment[..len]).is_err(),
                "assignment cut to {len} bytes"
            );
        }
    }

    #[test]
    fn huge_declared_counts_are_refused_before_allocating() {
        let bytes: Vec<u8> = [&[0x00, 0x03][..], &[0x7f, 0xff, 0xff, 0xff], &[0, 1]].concat();
        assert!(matches!(
            decode_subscription(&bytes),
            Err(ProtocolError::Malformed { .. })
        ));
        let bytes: Vec<u8> = [
            &[0x00, 0x00][..],
            &[0, 0, 0, 1],
            &[0, 1],
            b"t",
            &[0x7f, 0xff, 0xff, 0xff], // partitions: absurd count
        ]
        .concat();
        assert!(matches!(
            decode_assignment(&bytes),
            Err(ProtocolError::Malformed { .. })
        ));
    }

    #[test]
    fn garbage_never_panics() {
        // A cheap deterministic generator: every input is either decoded or refused.
        let mut state: u32 = 0x1234_5678;
        for round in 0..5000 {
            let len = round % 64;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    // Bias towards small and 0xff bytes so lengths are sometimes plausible.
                    match state % 4 {
                        0 => 0,
                        1 => 0xff,
                        2 => (state >> 8) as u8 % 4,
                        _ => (state >> 8) as u8,
                    }
                })
                .collect();
            let _ = decode_subscription(&bytes);
            let _ = decode_assignment(&bytes);
        }
    }

    #[test]
    fn invalid_utf8_topic_is_an_error() {
        let bytes: Vec<u8> = [
            &[0x00, 0x00][..],
            &[0, 0, 0, 1],
            &[0, 2],
            &[0xc3, 0x28],
            &[0, 0, 0, 0],
        ]
        .concat();
        assert!(matches!(
            decode_subscription(&bytes),
            Err(ProtocolError::Malformed { .. })
        ));
    }

    #[test]
    fn unsupported_encode_version_is_an_error() {
        assert!(matches!(
            encode_subscription_at(&full_subscription(), 4),
            Err(ProtocolError::Encode { .. })
        ));
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("test hex"))
            .collect()
    }
}
