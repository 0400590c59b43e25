//! Property tests (fuzzing) for the event codec: whatever bytes arrive on a topic, decoding
//! returns a value or an error and never panics; anything it accepts is a valid event that
//! re-encodes to itself; every valid order survives an encode/decode round trip.
//!
//! `PROPTEST_CASES=100000 cargo test -p shared --test fuzz_events --release` runs longer.

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use shared::events::{OrderEvent, decode_inventory, decode_order, encode_event};
use uuid::Uuid;

fn millisecond_time() -> impl Strategy<Value = DateTime<Utc>> {
    // 1970 to 2100, whole milliseconds: the wire format keeps milliseconds.
    (0i64..4_102_444_800_000)
        .prop_map(|millis| Utc.timestamp_millis_opt(millis).single().expect("in range"))
}

fn valid_order() -> impl Strategy<Value = OrderEvent> {
    (
        any::<u128>(),
        "[A-Za-z0-9_.:-]{1,128}",
        "[A-Za-z0-9_.:-]{1,128}",
        1u32..,
        (0u64..1_000_000_000).prop_map(|cents| cents as f64 / 100.0),
        "[A-Z]{3}",
        millisecond_time(),
    )
        .prop_map(|(id, customer, item, quantity, price, currency, created)| {
            OrderEvent::new(
                Uuid::from_u128(id),
                customer,
                item,
                quantity,
                price,
                currency,
                created,
            )
        })
}

/// One edit of a valid encoding: flip a byte, cut the tail, insert or delete a byte.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Delete(usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Flip(at, byte)),
            any::<usize>().prop_map(Edit::Truncate),
            (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Insert(at, byte)),
            any::<usize>().prop_map(Edit::Delete),
        ],
        1..6,
    )
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let len = bytes.len().max(1);
        match *edit {
            Edit::Flip(at, byte) if !bytes.is_empty() => bytes[at % len] ^= byte | 1,
            Edit::Truncate(at) => bytes.truncate(at % len),
            Edit::Insert(at, byte) => bytes.insert(at % (bytes.len() + 1), byte),
            Edit::Delete(at) if !bytes.is_empty() => {
                bytes.remove(at % len);
            }
            _ => {}
        }
    }
    bytes
}

/// Whatever the decoder accepts must be valid and stable under re-encoding.
fn accepted_order_is_stable(order: &OrderEvent) {
    assert!(order.quantity >= 1);
    assert!(order.unit_price.is_finite() && order.unit_price >= 0.0);
    let again = decode_order(&encode_event(order).expect("encodes")).expect("re-decodes");
    assert_eq!(&again, order);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(order) = decode_order(&bytes) {
            accepted_order_is_stable(&order);
        }
        let _ = decode_inventory(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics_the_decoders(text in "\\PC{0,600}") {
        if let Ok(order) = decode_order(text.as_bytes()) {
            accepted_order_is_stable(&order);
        }
        let _ = decode_inventory(text.as_bytes());
    }

    #[test]
    fn every_valid_order_round_trips(order in valid_order()) {
        let bytes = encode_event(&order).expect("encodes");
        prop_assert_eq!(decode_order(&bytes).expect("decodes"), order);
    }

    #[test]
    fn edited_orders_are_decoded_or_refused_never_mangled(order in valid_order(), edits in edits()) {
        let bytes = apply(encode_event(&order).expect("encodes"), &edits);
        if let Ok(decoded) = decode_order(&bytes) {
            accepted_order_is_stable(&decoded);
        }
    }

    #[test]
    fn json_of_the_right_shape_with_wrong_values_is_refused_without_panicking(
        quantity in prop_oneof![Just("-1".to_owned()), Just("0".to_owned()), Just("1e40".to_owned()),
                                Just("4294967296".to_owned()), Just("\"3\"".to_owned()), Just("null".to_owned()),
                                any::<i64>().prop_map(|n| n.to_string())],
        price in prop_oneof![Just("-0.5".to_owned()), Just("1e400".to_owned()), Just("\"NaN\"".to_owned()),
                             any::<f64>().prop_map(|f| f.to_string())],
    ) {
        let text = format!(
            r#"{{"schema_version":1,"order_id":"00000000-0000-0000-0000-000000000001","customer_id":"c","item_id":"i","quantity":{quantity},"unit_price":{price},"currency":"EUR","status":"created","created_at":"2026-01-01T00:00:00.000Z"}}"#
        );
        if let Ok(order) = decode_order(text.as_bytes()) {
            accepted_order_is_stable(&order);
        }
    }
}
