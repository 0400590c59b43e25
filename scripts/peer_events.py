"""Order and outcome events for the Python peers, built from shared/schemas/*.schema.json.

The peers (benchmarks' counterparts of our services) must write and read exactly the events
our services do, so the field list, the constants (schema_version, status) and the rules
come from the schema files, never from JSON typed into a script. Owns: loading a schema,
building an event in the schema's field order, and checking one against the schema. Must not
depend on Kafka clients: the peers bring those.

The one choice a reader may question: `build` checks only the field names on every call and
`check` (the full rules) runs on the first event a builder makes, not on all of them. A full
check per event would make the peers several times slower and the benchmarks would measure
the validator; a builder makes every event the same way, so the first one proves the shape.
"""
import json
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "shared" / "schemas"

# inventory-consumer's namespace for outcome event ids (UUID v5 of "order_id:outcome"), so a
# reprocessed order yields the same event id, as ours does.
OUTCOME_NAMESPACE = uuid.UUID("6f1c2a0e-5d8b-4c71-9a43-7e2b1f0dc3a9")

_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def load_schema(name):
    """The schema shared/schemas/NAME.schema.json as a dict."""
    with open(SCHEMA_DIR / f"{name}.schema.json", encoding="utf-8") as file:
        return json.load(file)


def violations(schema, value, path="$"):
    """Every way VALUE breaks SCHEMA (the keywords our schemas use), as readable strings."""
    found = []
    if "const" in schema and value != schema["const"]:
        found.append(f"{path}: {value!r} is not the constant {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](value) for t in types):
            found.append(f"{path}: {value!r} is not of type {' or '.join(types)}")
            return found
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(f"{path}: {value!r} does not match {schema['pattern']}")
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            found.append(f"{path}: length {len(value)} is outside the schema's bounds")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            found.append(f"{path}: {value} is below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            found.append(f"{path}: {value} is above {schema['maximum']}")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                found.append(f"{path}: required field {name!r} is missing")
        properties = schema.get("properties", {})
        for name, item in value.items():
            if name in properties:
                found.extend(violations(properties[name], item, f"{path}.{name}"))
            elif schema.get("additionalProperties") is False:
                found.append(f"{path}: field {name!r} is not in the schema")
        if "if" in schema:
            branch = "then" if not violations(schema["if"], value, path) else "else"
            if branch in schema:
                found.extend(violations(schema[branch], value, path))
    return found


def check(schema, event):
    """Raises ValueError naming every rule of SCHEMA that EVENT breaks."""
    problems = violations(schema, event)
    if problems:
        raise ValueError(f"{schema.get('title', 'event')} breaks its schema: " + "; ".join(problems))


class EventBuilder:
    """Builds events of one schema: constants filled in, fields in the schema's order."""

    def __init__(self, schema_name):
        self.schema = load_schema(schema_name)
        properties = self.schema["properties"]
        self.fields = list(self.schema["required"])
        self.constants = {name: properties[name]["const"] for name in self.fields
                          if "const" in properties[name]}
        self.free = frozenset(self.fields) - frozenset(self.constants)
        self.checked = False

    def build(self, **values):
        if values.keys() != self.free:
            missing = sorted(self.free - values.keys())
            unknown = sorted(values.keys() - self.free)
            raise ValueError(f"{self.schema['title']}: missing {missing}, not in the schema {unknown}")
        event = {name: self.constants[name] if name in self.constants else values[name]
                 for name in self.fields}
        if not self.checked:
            check(self.schema, event)
            self.checked = True
        return event


ORDERS = EventBuilder("order-event")
OUTCOMES = EventBuilder("inventory-event")
OUTCOME_VALUES = OUTCOMES.schema["properties"]["outcome"]["enum"]


def timestamp(moment=None):
    """RFC 3339 in UTC with exactly three fraction digits and Z, as the schemas require."""
    moment = moment or datetime.now(timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def millis(text):
    """Milliseconds since the epoch of a schema timestamp."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


def order(order_id, customer_id, item_id, quantity, unit_price, created_at, currency="EUR"):
    return ORDERS.build(order_id=order_id, customer_id=customer_id, item_id=item_id,
                        quantity=quantity, unit_price=unit_price, currency=currency,
                        created_at=created_at)


def outcome_event_id(order_id, outcome):
    return str(uuid.uuid5(OUTCOME_NAMESPACE, f"{order_id}:{outcome}"))


def outcome_for(order_event, outcome, reason, stock_after, partition, offset, processed_at=None):
    """The outcome inventory-consumer writes for ORDER_EVENT (a dict) read at PARTITION/OFFSET."""
    return OUTCOMES.build(event_id=outcome_event_id(order_event["order_id"], outcome),
                          order_id=order_event["order_id"], item_id=order_event["item_id"],
                          quantity=order_event["quantity"], outcome=outcome, reason=reason,
                          stock_after=stock_after, attempts=1,
                          order_created_at=order_event["created_at"],
                          processed_at=processed_at or timestamp(),
                          source_partition=partition, source_offset=offset)


# The record headers our producers set (shared::events); the peers send the same bytes.
ORDER_HEADERS = {"event-type": b"order.created", "schema-version": b"1"}
OUTCOME_HEADERS = {"event-type": b"inventory.outcome", "schema-version": b"1"}


def encode(event):
    return json.dumps(event, separators=(",", ":")).encode()


if __name__ == "__main__":
    # A self-check: an order and its outcome built here pass their schemas.
    sample = order(str(uuid.uuid4()), "customer-1", "item-0001", 2, 9.99, timestamp())
    check(ORDERS.schema, sample)
    check(OUTCOMES.schema, outcome_for(sample, "reserved", None, 10, 0, 0))
    print("peer_events: order and outcome match shared/schemas")
