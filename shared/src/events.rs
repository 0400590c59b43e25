//! The pipeline's two event schemas (an order; the inventory outcome of an order) and their
//! strict JSON codec, which accepts exactly what `shared/schemas/*.schema.json` accept: never
//! panics, checks size before parsing, requires every key (nullable ones as `null`). It must not
//! know what services do with an event. Design choice: one parse on the happy path; the
//! `schema_version` probe runs only when that parse fails, so a future version is still reported
//! as `UnsupportedVersion` rather than as whatever field it renamed, without parsing twice.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

pub const ORDER_SCHEMA_VERSION: u32 = 1;
pub const INVENTORY_SCHEMA_VERSION: u32 = 1;
/// The largest event we accept; a real order is about 250 bytes.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
/// The longest identifier (customer, item) we accept.
pub const MAX_ID_BYTES: usize = 128;

/// Namespace of the deterministic inventory event ids (UUID v5).
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a0e_5d8b_4c71_9a43_7e2b_1f0d_c3a9);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Created,
}

/// An order as the producer writes it to the order topic (key = `item_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderEvent {
    pub schema_version: u32,
    #[serde(deserialize_with = "hyphenated_uuid")]
    pub order_id: Uuid,
    pub customer_id: String,
    pub item_id: String,
    pub quantity: u32,
    pub unit_price: f64,
    pub currency: String,
    pub status: OrderStatus,
    #[serde(with = "rfc3339_millis")]
    pub created_at: DateTime<Utc>,
}

impl OrderEvent {
    pub fn new(
        order_id: Uuid,
        customer_id: impl Into<String>,
        item_id: impl Into<String>,
        quantity: u32,
        unit_price: f64,
        currency: impl Into<String>,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            schema_version: ORDER_SCHEMA_VERSION,
            order_id,
            customer_id: customer_id.into(),
            item_id: item_id.into(),
            quantity,
            unit_price,
            currency: currency.into(),
            status: OrderStatus::Created,
            created_at,
        }
    }

    fn validate(&self) -> Result<(), DecodeError> {
        check_id("customer_id", &self.customer_id)?;
        check_id("item_id", &self.item_id)?;
        if self.quantity == 0 {
            return Err(invalid("quantity", "must be at least 1"));
        }
        if !self.unit_price.is_finite() || self.unit_price < 0.0 {
            return Err(invalid("unit_price", "must be a finite number, 0 or more"));
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(invalid(
                "currency",
                "must be three upper-case letters (ISO 4217)",
            ));
        }
        Ok(())
    }
}

/// What the inventory consumer decided for an order (or a restock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum InventoryOutcome {
    Reserved,
    Rejected,
    Failed,
    Restocked,
}

impl InventoryOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "reserved",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
            Self::Restocked => "restocked",
        }
    }
}

/// One outcome on the inventory topic (key = `item_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryEvent {
    pub schema_version: u32,
    #[serde(deserialize_with = "hyphenated_uuid")]
    pub event_id: Uuid,
    #[serde(deserialize_with = "optional_hyphenated_uuid")]
    pub order_id: Option<Uuid>,
    pub item_id: String,
    pub quantity: u32,
    pub outcome: InventoryOutcome,
    #[serde(deserialize_with = "required_option")]
    pub reason: Option<String>,
    pub stock_after: i64,
    pub attempts: u32,
    #[serde(with = "rfc3339_millis_option")]
    pub order_created_at: Option<DateTime<Utc>>,
    #[serde(with = "rfc3339_millis")]
    pub processed_at: DateTime<Utc>,
    #[serde(deserialize_with = "required_option")]
    pub source_partition: Option<i32>,
    #[serde(deserialize_with = "required_option")]
    pub source_offset: Option<i64>,
}

impl InventoryEvent {
    /// The same order and outcome always give the same id, so reprocessing an order after a
    /// crash yields an identical event that consumers can count once.
    pub fn event_id_for(order_id: Uuid, outcome: InventoryOutcome) -> Uuid {
        let name = format!("{order_id}:{}", outcome.as_str());
        Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes())
    }

    /// A restock's id, in the UUIDv7 layout (RFC 9562 §5.7): the 48-bit timestamp is the
    /// restock round's start in Unix milliseconds, the 42-bit counter (`rand_a` and the top of
    /// `rand_b`, the RFC's "fixed bit-length dedicated counter", §6.2 method 1) the item's
    /// index within the round, and the low 32 bits the order partition whose stock it is.
    ///
    /// A restock answers no order, so it has no source offset to be recognised by; instead
    /// its id grows with every restock of a partition (rounds are at least a second apart,
    /// also across restarts), which lets a reader drop a repeated one with one mark per
    /// partition ([`InventoryEvent::restock_position`]).
    pub fn restock_event_id(partition: i32, round_started: DateTime<Utc>, index: u64) -> Uuid {
        const COUNTER_LOW_BITS: u32 = 30;
        let millis = u128::from(round_started.timestamp_millis().max(0) as u64) & ((1 << 48) - 1);
        let counter = u128::from(index) & ((1 << 42) - 1);
        let bits = millis << 80
            | 0x7 << 76
            | (counter >> COUNTER_LOW_BITS) << 64
            | 0b10 << 62
            | (counter & ((1 << COUNTER_LOW_BITS) - 1)) << 32
            | u128::from(partition as u32);
        Uuid::from_u128(bits)
    }

    /// For a restock written with [`InventoryEvent::restock_event_id`]: its order partition and
    /// its place among that partition's restocks (larger is later). `None` for an order's
    /// outcome, and for a restock without a partition or with another kind of id (written by
    /// an older or foreign producer), which a reader can only count as it comes.
    pub fn restock_position(&self) -> Option<(i32, u128)> {
        let partition = self.source_partition?;
        let ordered = self.outcome == InventoryOutcome::Restocked
            && self.event_id.get_version_num() == 7
            && (self.event_id.as_u128() as u32) == partition as u32;
        ordered.then_some((partition, self.event_id.as_u128()))
    }

    fn validate(&self) -> Result<(), DecodeError> {
        check_id("item_id", &self.item_id)?;
        match self.outcome {
            InventoryOutcome::Restocked => {
                if self.order_id.is_some() {
                    return Err(invalid("order_id", "must be null for a restock"));
                }
            }
            _ => {
                if self.order_id.is_none() {
                    return Err(invalid("order_id", "is required for an order's outcome"));
                }
                if self.source_partition.is_none() {
                    return Err(invalid(
                        "source_partition",
                        "is required for an order's outcome",
                    ));
                }
                if self.source_offset.is_none() {
                    return Err(invalid(
                        "source_offset",
                        "is required for an order's outcome",
                    ));
                }
            }
        }
        // A consumed record's partition and offset are never negative.
        if self.source_partition.is_some_and(|p| p < 0) {
            return Err(invalid("source_partition", "must be 0 or more"));
        }
        if self.source_offset.is_some_and(|o| o < 0) {
            return Err(invalid("source_offset", "must be 0 or more"));
        }
        Ok(())
    }
}

/// Why bytes are not a valid event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("event of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("malformed event: {reason}")]
    Malformed { reason: String },
    #[error("unsupported schema_version {found} (this build reads {supported})")]
    UnsupportedVersion { found: u64, supported: u32 },
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl DecodeError {
    /// A short, stable label for counters and dead-letter headers.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Malformed { .. } => "malformed",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::Invalid { .. } => "invalid",
        }
    }
}

fn invalid(field: &'static str, reason: &str) -> DecodeError {
    DecodeError::Invalid {
        field,
        reason: reason.to_owned(),
    }
}

fn check_id(field: &'static str, value: &str) -> Result<(), DecodeError> {
    if value.is_empty() || value.len() > MAX_ID_BYTES {
        return Err(DecodeError::Invalid {
            field,
            reason: format!("must be 1 to {MAX_ID_BYTES} bytes, found {}", value.len()),
        });
    }
    Ok(())
}

/// Only `schema_version`, every other key ignored: tells "a version we do not know" apart
/// from "malformed" once the full parse has failed.
#[derive(Deserialize)]
struct VersionProbe {
    schema_version: Option<serde_json::Value>,
}

/// Why a document that failed the full parse failed: its version, or its shape.
fn check_version(bytes: &[u8], supported: u32) -> Result<(), DecodeError> {
    let probe: VersionProbe =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed {
            reason: e.to_string(),
        })?;
    let version = probe.schema_version.ok_or_else(|| DecodeError::Malformed {
        reason: "missing field `schema_version`".into(),
    })?;
    let found = version.as_u64().ok_or_else(|| DecodeError::Malformed {
        reason: format!("schema_version must be a whole number, found {version}"),
    })?;
    if found != u64::from(supported) {
        return Err(DecodeError::UnsupportedVersion { found, supported });
    }
    Ok(())
}

pub fn decode_order(bytes: &[u8]) -> Result<OrderEvent, DecodeError> {
    let order: OrderEvent = decode_strict(bytes, ORDER_SCHEMA_VERSION)?;
    if order.schema_version != ORDER_SCHEMA_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            found: u64::from(order.schema_version),
            supported: ORDER_SCHEMA_VERSION,
        });
    }
    order.validate()?;
    Ok(order)
}

pub fn decode_inventory(bytes: &[u8]) -> Result<InventoryEvent, DecodeError> {
    let event: InventoryEvent = decode_strict(bytes, INVENTORY_SCHEMA_VERSION)?;
    if event.schema_version != INVENTORY_SCHEMA_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            found: u64::from(event.schema_version),
            supported: INVENTORY_SCHEMA_VERSION,
        });
    }
    event.validate()?;
    Ok(event)
}

/// Size check, then one parse on the happy path; only a failed parse pays for the version
/// probe that tells "a version we do not know" apart from "malformed".
fn decode_strict<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    supported: u32,
) -> Result<T, DecodeError> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit: MAX_EVENT_BYTES,
        });
    }
    // UTF-8 checked once for the whole document (std's ASCII fast path), so the parser need
    // not check every string again as `from_slice` does: a tenth of analytics' decode time.
    let text = std::str::from_utf8(bytes).map_err(|e| DecodeError::Malformed {
        reason: format!("not UTF-8: {e}"),
    })?;
    serde_json::from_str(text).map_err(|parse_error| match check_version(bytes, supported) {
        Err(version_error) => version_error,
        Ok(()) => DecodeError::Malformed {
            reason: parse_error.to_string(),
        },
    })
}

/// Serialises an event. Our event types always serialise; the `Result` is serde's.
pub fn encode_event<T: Serialize>(event: &T) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(event)
}

/// An `Option` whose key must be present (null allowed): serde's default treats a missing
/// key as `None`, which would let a truncated producer through. Any `deserialize_with` on an
/// `Option` field has this effect; this one adds nothing else.
fn required_option<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer)
}

/// A string value checked by `parse`, read without allocating (the analytics consumer decodes
/// every record).
struct CheckedStr<T> {
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
}

impl<T> serde::de::Visitor<'_> for CheckedStr<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.expecting)
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
        (self.parse)(text).map_err(E::custom)
    }
}

/// A UUID in the hyphenated form only, as the JSON Schemas' pattern says: uuid's own serde
/// impl also accepts the simple, braced and URN forms, which other readers would reject.
struct HyphenatedUuid(Uuid);

impl<'de> Deserialize<'de> for HyphenatedUuid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_str(CheckedStr {
                expecting: "a hyphenated UUID string",
                parse: parse_hyphenated_uuid,
            })
            .map(Self)
    }
}

fn parse_hyphenated_uuid(text: &str) -> Result<Uuid, String> {
    // 36 bytes is only the hyphenated form (simple is 32, braced 38, URN 45).
    if text.len() != 36 {
        return Err(format!("{text:?} is not a hyphenated UUID"));
    }
    Uuid::try_parse(text).map_err(|e| format!("{text:?} is not a hyphenated UUID: {e}"))
}

fn hyphenated_uuid<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Uuid, D::Error> {
    HyphenatedUuid::deserialize(deserializer).map(|uuid| uuid.0)
}

fn optional_hyphenated_uuid<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Uuid>, D::Error> {
    required_option::<D, HyphenatedUuid>(deserializer).map(|uuid| uuid.map(|uuid| uuid.0))
}

/// RFC 3339 in UTC with exactly milliseconds and `Z`, e.g. `2026-11-24T08:55:10.123Z`.
mod rfc3339_millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// A timestamp as [`parse`] accepts it.
    pub struct Millis(pub DateTime<Utc>);

    impl<'de> Deserialize<'de> for Millis {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer
                .deserialize_str(super::CheckedStr {
                    expecting: "an RFC 3339 UTC timestamp with milliseconds",
                    parse,
                })
                .map(Self)
        }
    }

    pub fn serialize<S: Serializer>(
        value: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        Millis::deserialize(deserializer).map(|millis| millis.0)
    }

    /// Strict: `T`, milliseconds and `Z` exactly, as the JSON Schema's pattern says (chrono
    /// alone would also take `t` or a space, any number of fraction digits, and offsets).
    pub fn parse(text: &str) -> Result<DateTime<Utc>, String> {
        let bytes = text.as_bytes();
        if bytes.len() != 24 || bytes[10] != b'T' || bytes[19] != b'.' || bytes[23] != b'Z' {
            return Err(format!(
                "{text:?} is not a UTC RFC 3339 timestamp with milliseconds (YYYY-MM-DDTHH:MM:SS.mmmZ)"
            ));
        }
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("{text:?} is not an RFC 3339 timestamp: {e}"))
    }
}

mod rfc3339_millis_option {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserializer, Serializer};

    use super::rfc3339_millis::Millis;

    pub fn serialize<S: Serializer>(
        value: &Option<DateTime<Utc>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => {
                serializer.serialize_some(&value.to_rfc3339_opts(SecondsFormat::Millis, true))
            }
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        super::required_option::<D, Millis>(deserializer).map(|t| t.map(|millis| millis.0))
    }
}

/// `created_at` as producers write it, for callers that build timestamps by hand.
pub fn format_timestamp(value: &DateTime<Utc>) -> String {
    value.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests;
