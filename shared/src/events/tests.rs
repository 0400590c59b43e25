use chrono::TimeZone;

use super::*;

fn order() -> OrderEvent {
    OrderEvent::new(
        Uuid::from_u128(0x1234),
        "customer-42",
        "item-7",
        3,
        19.99,
        "EUR",
        Utc.with_ymd_and_hms(2026, 11, 24, 8, 55, 10).unwrap()
            + chrono::Duration::milliseconds(123),
    )
}

fn outcome(kind: InventoryOutcome) -> InventoryEvent {
    let order = order();
    let restock = kind == InventoryOutcome::Restocked;
    InventoryEvent {
        schema_version: INVENTORY_SCHEMA_VERSION,
        event_id: InventoryEvent::event_id_for(order.order_id, kind),
        order_id: (!restock).then_some(order.order_id),
        item_id: order.item_id.clone(),
        quantity: order.quantity,
        outcome: kind,
        reason: (kind == InventoryOutcome::Rejected).then(|| "insufficient_stock".to_owned()),
        stock_after: 97,
        attempts: 1,
        order_created_at: (!restock).then_some(order.created_at),
        processed_at: order.created_at + chrono::Duration::milliseconds(5),
        source_partition: (!restock).then_some(2),
        source_offset: (!restock).then_some(41),
    }
}

fn order_json() -> serde_json::Value {
    serde_json::to_value(order()).expect("serialises")
}

fn decode_order_value(value: &serde_json::Value) -> Result<OrderEvent, DecodeError> {
    decode_order(value.to_string().as_bytes())
}

#[test]
fn an_order_round_trips() {
    let bytes = encode_event(&order()).expect("encode");
    assert_eq!(decode_order(&bytes), Ok(order()));
}

#[test]
fn every_inventory_outcome_round_trips() {
    for kind in [
        InventoryOutcome::Reserved,
        InventoryOutcome::Rejected,
        InventoryOutcome::Failed,
        InventoryOutcome::Restocked,
    ] {
        let bytes = encode_event(&outcome(kind)).expect("encode");
        assert_eq!(decode_inventory(&bytes), Ok(outcome(kind)), "{kind:?}");
    }
}

#[test]
fn created_at_is_written_with_milliseconds_and_z() {
    assert_eq!(order_json()["created_at"], "2026-11-24T08:55:10.123Z");
}

#[test]
fn optional_fields_are_written_as_null() {
    let value = serde_json::to_value(outcome(InventoryOutcome::Restocked)).expect("serialises");
    assert!(value["order_id"].is_null());
    assert!(value["source_offset"].is_null());
}

#[test]
fn truncated_json_is_malformed() {
    let bytes = encode_event(&order()).expect("encode");
    for cut in [1, bytes.len() / 2, bytes.len() - 1] {
        assert_eq!(
            decode_order(&bytes[..cut]).map_err(|e| e.kind()),
            Err("malformed"),
            "cut at {cut}"
        );
    }
}

#[test]
fn wrong_types_are_malformed_and_name_the_field() {
    let mut value = order_json();
    value["quantity"] = "three".into();
    let err = decode_order_value(&value).expect_err("string quantity");
    assert_eq!(err.kind(), "malformed");
    assert!(err.to_string().contains("invalid type"), "{err}");

    let mut value = order_json();
    value["order_id"] = "not-a-uuid".into();
    assert_eq!(
        decode_order_value(&value).map_err(|e| e.kind()),
        Err("malformed")
    );
}

#[test]
fn a_missing_field_is_named() {
    let mut value = order_json();
    value.as_object_mut().expect("object").remove("item_id");
    let err = decode_order_value(&value).expect_err("missing");
    assert!(err.to_string().contains("missing field `item_id`"), "{err}");
}

#[test]
fn a_missing_nullable_field_is_still_an_error() {
    let mut value = serde_json::to_value(outcome(InventoryOutcome::Reserved)).expect("serialises");
    value.as_object_mut().expect("object").remove("reason");
    let err = decode_inventory(value.to_string().as_bytes()).expect_err("missing reason");
    assert!(err.to_string().contains("missing field `reason`"), "{err}");
}

#[test]
fn an_unknown_field_is_rejected() {
    let mut value = order_json();
    value["discount"] = 5.into();
    let err = decode_order_value(&value).expect_err("unknown field");
    assert!(
        err.to_string().contains("unknown field `discount`"),
        "{err}"
    );
}

#[test]
fn an_unknown_version_is_reported_as_such() {
    let mut value = order_json();
    value["schema_version"] = 2.into();
    assert_eq!(
        decode_order_value(&value),
        Err(DecodeError::UnsupportedVersion {
            found: 2,
            supported: 1
        })
    );
}

#[test]
fn a_missing_or_non_numeric_version_is_malformed() {
    let mut value = order_json();
    value
        .as_object_mut()
        .expect("object")
        .remove("schema_version");
    assert_eq!(
        decode_order_value(&value).map_err(|e| e.kind()),
        Err("malformed")
    );
    value["schema_version"] = "1".into();
    assert_eq!(
        decode_order_value(&value).map_err(|e| e.kind()),
        Err("malformed")
    );
}

#[test]
fn ten_megabyte_value_is_rejected_before_parsing() {
    let mut value = order_json();
    value["customer_id"] = "x".repeat(10 * 1024 * 1024).into();
    let bytes = value.to_string().into_bytes();
    assert_eq!(
        decode_order(&bytes),
        Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit: MAX_EVENT_BYTES
        })
    );
    // Not even valid JSON: the size check comes first.
    let garbage = vec![b'{'; 10 * 1024 * 1024];
    assert_eq!(
        decode_order(&garbage).map_err(|e| e.kind()),
        Err("too_large")
    );
}

#[test]
fn business_rules_are_checked() {
    let cases: [(&str, serde_json::Value, &str); 5] = [
        ("quantity", 0.into(), "quantity"),
        ("currency", "euro".into(), "currency"),
        ("unit_price", (-1.0).into(), "unit_price"),
        ("item_id", "".into(), "item_id"),
        ("customer_id", "c".repeat(129).into(), "customer_id"),
    ];
    for (field, bad, named) in cases {
        let mut value = order_json();
        value[field] = bad;
        match decode_order_value(&value) {
            Err(DecodeError::Invalid { field, .. }) => assert_eq!(field, named),
            other => panic!("{named}: expected Invalid, got {other:?}"),
        }
    }
}

#[test]
fn a_negative_quantity_is_malformed() {
    let mut value = order_json();
    value["quantity"] = (-2).into();
    assert_eq!(
        decode_order_value(&value).map_err(|e| e.kind()),
        Err("malformed")
    );
}

#[test]
fn timestamps_without_milliseconds_or_utc_are_rejected() {
    for bad in [
        "2026-11-24T08:55:10Z",
        "2026-11-24T08:55:10.123+01:00",
        "yesterday",
    ] {
        let mut value = order_json();
        value["created_at"] = bad.into();
        assert_eq!(
            decode_order_value(&value).map_err(|e| e.kind()),
            Err("malformed"),
            "{bad}"
        );
    }
}

#[test]
fn outcome_rules_are_checked() {
    let mut restock = outcome(InventoryOutcome::Restocked);
    restock.order_id = Some(Uuid::nil());
    let bytes = encode_event(&restock).expect("encode");
    assert!(matches!(
        decode_inventory(&bytes),
        Err(DecodeError::Invalid {
            field: "order_id",
            ..
        })
    ));

    let mut reserved = outcome(InventoryOutcome::Reserved);
    reserved.source_offset = None;
    let bytes = encode_event(&reserved).expect("encode");
    assert!(matches!(
        decode_inventory(&bytes),
        Err(DecodeError::Invalid { .. })
    ));
}

#[test]
fn event_ids_are_deterministic_per_order_and_outcome() {
    let order_id = Uuid::from_u128(99);
    let reserved = InventoryEvent::event_id_for(order_id, InventoryOutcome::Reserved);
    assert_eq!(
        reserved,
        InventoryEvent::event_id_for(order_id, InventoryOutcome::Reserved)
    );
    assert_ne!(
        reserved,
        InventoryEvent::event_id_for(order_id, InventoryOutcome::Failed)
    );
    assert_ne!(
        reserved,
        InventoryEvent::event_id_for(Uuid::from_u128(100), InventoryOutcome::Reserved)
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for length in 0..2000usize {
        let bytes: Vec<u8> = (0..length % 300)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed & 0xff) as u8
            })
            .collect();
        let _ = decode_order(&bytes);
        let _ = decode_inventory(&bytes);
    }
}

#[test]
fn restock_ids_grow_with_every_restock_of_a_partition() {
    let round = Utc.with_ymd_and_hms(2026, 11, 24, 8, 0, 0).unwrap();
    let next_round = round + chrono::Duration::seconds(1);
    let ids = [
        InventoryEvent::restock_event_id(5, round, 0),
        InventoryEvent::restock_event_id(5, round, 1),
        InventoryEvent::restock_event_id(5, round, 4095),
        InventoryEvent::restock_event_id(5, round, 4096),
        InventoryEvent::restock_event_id(5, round, (1 << 42) - 1),
        InventoryEvent::restock_event_id(5, next_round, 0),
    ];
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
    for id in ids {
        assert_eq!(id.get_version_num(), 7, "{id}");
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122, "{id}");
    }
    assert_ne!(
        InventoryEvent::restock_event_id(5, round, 0),
        InventoryEvent::restock_event_id(6, round, 0),
        "partitions restocking in the same millisecond"
    );
}

#[test]
fn a_restock_names_its_place_only_when_numbered_for_its_partition() {
    let mut restock = outcome(InventoryOutcome::Restocked);
    assert_eq!(restock.restock_position(), None, "no partition, a v5 id");
    restock.source_partition = Some(3);
    assert_eq!(restock.restock_position(), None, "a v5 id");
    restock.event_id = InventoryEvent::restock_event_id(3, restock.processed_at, 9);
    assert_eq!(
        restock.restock_position(),
        Some((3, restock.event_id.as_u128()))
    );
    let bytes = encode_event(&restock).expect("encode");
    assert_eq!(decode_inventory(&bytes), Ok(restock.clone()));
    restock.source_partition = Some(4);
    assert_eq!(restock.restock_position(), None, "another partition's id");
    assert_eq!(outcome(InventoryOutcome::Reserved).restock_position(), None);
}

#[test]
fn bytes_that_are_not_utf8_are_malformed() {
    let mut bytes = encode_event(&order()).expect("encode");
    let at = bytes
        .windows(6)
        .position(|w| w == b"item-7")
        .expect("the item id");
    bytes[at] = 0xff;
    assert!(matches!(
        decode_order(&bytes),
        Err(DecodeError::Malformed { .. })
    ));
}
