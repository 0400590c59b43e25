//! Property tests (fuzzing) for the consumer-protocol bytes that other group members send us
//! through the coordinator: any JoinGroup metadata or SyncGroup assignment, however corrupt,
//! decodes to a value or an error — no panic, no allocation sized by a forged length — and
//! every well-formed subscription and assignment round-trips at the versions we write.
//!
//! `PROPTEST_CASES=100000 cargo test -p shared --test fuzz_consumer_protocol --release` runs longer.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use shared::group::protocol::{
    ASSIGNMENT_VERSION, Assignment, SUBSCRIPTION_VERSION, Subscription, TopicPartitions,
    decode_assignment, decode_subscription, encode_assignment, encode_subscription,
};

fn topic_partitions() -> impl Strategy<Value = TopicPartitions> {
    prop::collection::btree_map(
        "[a-z0-9._-]{1,40}",
        prop::collection::btree_set(0i32..10_000, 0..20),
        0..8,
    )
    .prop_map(|map: BTreeMap<String, BTreeSet<i32>>| {
        map.into_iter()
            .map(|(topic, partitions)| (topic, partitions.into_iter().collect()))
            .collect()
    })
}

fn subscription() -> impl Strategy<Value = Subscription> {
    (
        prop::collection::btree_set("[a-z0-9._-]{1,40}", 1..8),
        prop::collection::vec(any::<u8>(), 0..64),
        topic_partitions(),
        -1i32..1_000_000,
        prop::option::of("[a-z0-9-]{1,16}"),
    )
        .prop_map(
            |(topics, user_data, owned, generation_id, rack_id)| Subscription {
                topics: topics.into_iter().collect(),
                user_data,
                owned_partitions: owned,
                generation_id,
                rack_id,
            },
        )
}

fn assignment() -> impl Strategy<Value = Assignment> {
    (
        topic_partitions(),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(partitions, user_data)| Assignment {
            partitions,
            user_data,
        })
}

/// A valid version prefix followed by arbitrary bytes: the body parser is what gets fuzzed,
/// including array counts and string lengths far larger than the input.
fn versioned_garbage() -> impl Strategy<Value = Vec<u8>> {
    (-2i16..6, prop::collection::vec(any::<u8>(), 0..512)).prop_map(|(version, body)| {
        let mut bytes = version.to_be_bytes().to_vec();
        bytes.extend(body);
        bytes
    })
}

/// A length field forged to claim far more entries than the bytes hold.
fn forged_counts() -> impl Strategy<Value = Vec<u8>> {
    (
        0i16..4,
        any::<i32>(),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(version, count, tail)| {
            let mut bytes = version.to_be_bytes().to_vec();
            bytes.extend(count.to_be_bytes());
            bytes.extend(tail);
            bytes
        })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = decode_subscription(&bytes);
        let _ = decode_assignment(&bytes);
    }

    #[test]
    fn corrupt_bodies_behind_a_valid_version_never_panic(bytes in versioned_garbage()) {
        let _ = decode_subscription(&bytes);
        let _ = decode_assignment(&bytes);
    }

    #[test]
    fn forged_lengths_are_refused_not_allocated(bytes in forged_counts()) {
        let _ = decode_subscription(&bytes);
        let _ = decode_assignment(&bytes);
    }

    #[test]
    fn subscriptions_round_trip(subscription in subscription()) {
        let bytes = encode_subscription(&subscription).expect("encodes");
        prop_assert_eq!(&bytes[..2], &SUBSCRIPTION_VERSION.to_be_bytes()[..]);
        prop_assert_eq!(decode_subscription(&bytes).expect("decodes"), subscription);
    }

    #[test]
    fn assignments_round_trip(assignment in assignment()) {
        let bytes = encode_assignment(&assignment).expect("encodes");
        prop_assert_eq!(&bytes[..2], &ASSIGNMENT_VERSION.to_be_bytes()[..]);
        prop_assert_eq!(decode_assignment(&bytes).expect("decodes"), assignment);
    }

    #[test]
    fn a_truncated_encoding_is_an_error_never_a_different_value(
        subscription in subscription(), cut in any::<prop::sample::Index>()
    ) {
        let bytes = encode_subscription(&subscription).expect("encodes");
        let cut = cut.index(bytes.len());
        if let Ok(decoded) = decode_subscription(&bytes[..cut]) {
            // Only a cut inside trailing optional fields may still decode, and then every
            // field it kept must match.
            prop_assert_eq!(decoded.topics, subscription.topics);
        }
    }
}
