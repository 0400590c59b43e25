//! The JSON Schemas in `shared/schemas/` agree with the Rust event types: the same properties,
//! every event Rust writes validates, and malformed documents are rejected by both.

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use shared::events::{
    INVENTORY_SCHEMA_VERSION, InventoryEvent, InventoryOutcome, OrderEvent, decode_inventory,
    decode_order,
};
use uuid::Uuid;

const ORDER_SCHEMA: &str = include_str!("../schemas/order-event.schema.json");
const INVENTORY_SCHEMA: &str = include_str!("../schemas/inventory-event.schema.json");

fn validator(text: &str) -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema compiles")
}

fn order() -> OrderEvent {
    let created = Utc
        .with_ymd_and_hms(2026, 11, 24, 9, 0, 0)
        .single()
        .expect("valid date");
    OrderEvent::new(
        Uuid::from_u128(7),
        "customer-1",
        "item-2",
        4,
        2.5,
        "USD",
        created,
    )
}

fn inventory(outcome: InventoryOutcome) -> InventoryEvent {
    let order = order();
    let restock = outcome == InventoryOutcome::Restocked;
    InventoryEvent {
        schema_version: INVENTORY_SCHEMA_VERSION,
        event_id: if restock {
            InventoryEvent::restock_event_id(0, order.created_at, 3)
        } else {
            InventoryEvent::event_id_for(order.order_id, outcome)
        },
        order_id: (!restock).then_some(order.order_id),
        item_id: order.item_id.clone(),
        quantity: order.quantity,
        outcome,
        reason: (outcome == InventoryOutcome::Failed).then(|| "simulated_failure".into()),
        stock_after: 12,
        attempts: 2,
        order_created_at: (!restock).then_some(order.created_at),
        processed_at: order.created_at,
        // A restock names the order partition whose stock it is, but no order record.
        source_partition: Some(0),
        source_offset: (!restock).then_some(5),
    }
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    keys
}

fn schema_properties(text: &str) -> (Vec<String>, Vec<String>) {
    let schema: Value = serde_json::from_str(text).expect("JSON");
    let properties = keys(&schema["properties"]);
    let mut required: Vec<String> = schema["required"]
        .as_array()
        .expect("required list")
        .iter()
        .map(|v| v.as_str().expect("name").to_owned())
        .collect();
    required.sort();
    (properties, required)
}

#[test]
fn schema_properties_match_the_rust_fields_and_all_are_required() {
    let order = serde_json::to_value(order()).expect("serialises");
    let (properties, required) = schema_properties(ORDER_SCHEMA);
    assert_eq!(properties, keys(&order));
    assert_eq!(required, keys(&order));

    let event = serde_json::to_value(inventory(InventoryOutcome::Reserved)).expect("serialises");
    let (properties, required) = schema_properties(INVENTORY_SCHEMA);
    assert_eq!(properties, keys(&event));
    assert_eq!(required, keys(&event));
}

#[test]
fn events_written_by_rust_validate_against_the_schemas() {
    let order_schema = validator(ORDER_SCHEMA);
    let order = serde_json::to_value(order()).expect("serialises");
    assert!(order_schema.is_valid(&order), "{order}");

    let inventory_schema = validator(INVENTORY_SCHEMA);
    for outcome in [
        InventoryOutcome::Reserved,
        InventoryOutcome::Rejected,
        InventoryOutcome::Failed,
        InventoryOutcome::Restocked,
    ] {
        let event = serde_json::to_value(inventory(outcome)).expect("serialises");
        assert!(inventory_schema.is_valid(&event), "{event}");
    }
}

#[test]
fn what_the_schemas_accept_the_decoder_accepts() {
    let order_schema = validator(ORDER_SCHEMA);
    let order = serde_json::to_value(order()).expect("serialises");
    // Upper-case hex is a valid hyphenated UUID for both; a free item is allowed.
    let upper = with(
        &order,
        "order_id",
        Some(json!("0000000A-0000-0000-0000-00000000000B")),
    );
    let free = with(&order, "unit_price", Some(json!(0.0)));
    for document in [order, upper, free] {
        assert!(order_schema.is_valid(&document), "{document}");
        assert!(
            decode_order(document.to_string().as_bytes()).is_ok(),
            "{document}"
        );
    }

    let inventory_schema = validator(INVENTORY_SCHEMA);
    for outcome in [
        InventoryOutcome::Reserved,
        InventoryOutcome::Rejected,
        InventoryOutcome::Failed,
        InventoryOutcome::Restocked,
    ] {
        let event = serde_json::to_value(inventory(outcome)).expect("serialises");
        assert!(inventory_schema.is_valid(&event), "{event}");
        assert_eq!(
            decode_inventory(event.to_string().as_bytes()),
            Ok(inventory(outcome))
        );
    }
}

fn with(base: &Value, field: &str, replacement: Option<Value>) -> Value {
    let mut value = base.clone();
    let object = value.as_object_mut().expect("object");
    match replacement {
        Some(replacement) => {
            object.insert(field.to_owned(), replacement);
        }
        None => {
            object.remove(field);
        }
    }
    value
}

#[test]
fn malformed_orders_are_rejected_by_schema_and_decoder_alike() {
    let schema = validator(ORDER_SCHEMA);
    let good = serde_json::to_value(order()).expect("serialises");
    let cases = [
        ("wrong type", with(&good, "quantity", Some(json!("4")))),
        ("missing field", with(&good, "currency", None)),
        ("extra field", with(&good, "coupon", Some(json!("X")))),
        ("version 2", with(&good, "schema_version", Some(json!(2)))),
        ("bad currency", with(&good, "currency", Some(json!("usd")))),
        ("quantity 0", with(&good, "quantity", Some(json!(0)))),
        ("bad uuid", with(&good, "order_id", Some(json!("1234")))),
        ("bad status", with(&good, "status", Some(json!("shipped")))),
        (
            "no milliseconds",
            with(&good, "created_at", Some(json!("2026-11-24T09:00:00Z"))),
        ),
        (
            "negative price",
            with(&good, "unit_price", Some(json!(-0.01))),
        ),
        (
            "simple-form uuid",
            with(
                &good,
                "order_id",
                Some(json!("00000000000000000000000000000007")),
            ),
        ),
        (
            "space before the time",
            with(&good, "created_at", Some(json!("2026-11-24 09:00:00.000Z"))),
        ),
        (
            "month 13",
            with(&good, "created_at", Some(json!("2026-13-24T09:00:00.000Z"))),
        ),
        (
            "empty customer",
            with(&good, "customer_id", Some(json!(""))),
        ),
    ];
    for (name, document) in cases {
        assert!(!schema.is_valid(&document), "schema accepted {name}");
        assert!(
            decode_order(document.to_string().as_bytes()).is_err(),
            "decoder accepted {name}"
        );
    }
}

#[test]
fn malformed_inventory_events_are_rejected_by_schema_and_decoder_alike() {
    let schema = validator(INVENTORY_SCHEMA);
    let good = serde_json::to_value(inventory(InventoryOutcome::Rejected)).expect("serialises");
    let cases = [
        ("wrong type", with(&good, "stock_after", Some(json!("12")))),
        ("missing nullable field", with(&good, "reason", None)),
        ("extra field", with(&good, "warehouse", Some(json!("A")))),
        ("version 2", with(&good, "schema_version", Some(json!(2)))),
        ("bad outcome", with(&good, "outcome", Some(json!("lost")))),
        ("bad uuid", with(&good, "event_id", Some(json!("x")))),
        ("empty item", with(&good, "item_id", Some(json!("")))),
        (
            "braced uuid",
            with(
                &good,
                "order_id",
                Some(json!("{00000000-0000-0000-0000-000000000007}")),
            ),
        ),
        (
            "negative partition",
            with(&good, "source_partition", Some(json!(-1))),
        ),
        (
            "order outcome without its offset",
            with(&good, "source_offset", Some(Value::Null)),
        ),
        (
            "restock naming an order",
            with(&good, "outcome", Some(json!("restocked"))),
        ),
        (
            "processed_at without Z",
            with(
                &good,
                "processed_at",
                Some(json!("2026-11-24T09:00:00.000+00:00")),
            ),
        ),
    ];
    for (name, document) in cases {
        assert!(!schema.is_valid(&document), "schema accepted {name}");
        assert!(
            decode_inventory(document.to_string().as_bytes()).is_err(),
            "decoder accepted {name}"
        );
    }
}
