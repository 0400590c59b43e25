//! Frames for the response fuzz target: valid frames built from each response's shape
//! (`shared::wire::shapes`) at every version, and the mutations applied to them.

use kafka_protocol::messages::ApiKey;
use proptest::prelude::*;
use shared::wire::{Kind, Schema};

pub const APIS: [ApiKey; 17] = [
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::SyncGroup,
    ApiKey::DescribeGroups,
    ApiKey::SaslHandshake,
    ApiKey::ApiVersions,
    ApiKey::CreateTopics,
    ApiKey::InitProducerId,
    ApiKey::SaslAuthenticate,
];

pub fn shape_of(api: ApiKey) -> &'static Schema {
    shared::wire::shapes::response(api as i16).expect("every API we decode has a shape")
}

/// The response header version kafka-protocol uses for `api` at `version`.
pub fn header_version(api: ApiKey, version: i16) -> i16 {
    if api == ApiKey::ApiVersions {
        return 0; // always v0, whatever the request version
    }
    let flexible_from = shape_of(api).flexible_from;
    i16::from(version >= flexible_from)
}

/// Every (api, version) pair whose shape we know.
pub fn every_version() -> Vec<(ApiKey, i16)> {
    APIS.iter()
        .flat_map(|api| {
            let shape = shape_of(*api);
            (shape.min_version..=shape.max_version).map(move |v| (*api, v))
        })
        .collect()
}

// ---- frames built from a shape ------------------------------------------------------------

/// splitmix64: a small seeded generator, so a failing seed reproduces.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub fn put_varint(out: &mut Vec<u8>, mut value: u32) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub fn put_length(out: &mut Vec<u8>, compact: bool, classic_width: usize, length: usize) {
    if compact {
        put_varint(out, length as u32 + 1);
    } else if classic_width == 2 {
        out.extend_from_slice(&(length as i16).to_be_bytes());
    } else {
        out.extend_from_slice(&(length as i32).to_be_bytes());
    }
}

/// A valid encoding of `schema` at `version`: non-null strings, bytes and arrays (the shape
/// does not say which may be null), up to three elements per array, known tagged fields at
/// random and an unknown one now and then.
pub fn build_struct(schema: &Schema, version: i16, rng: &mut Rng, depth: u32, out: &mut Vec<u8>) {
    let flexible = version >= schema.flexible_from;
    for field in schema.fields {
        if field.tag.is_none() && (field.min..=field.max).contains(&version) {
            build_value(field.kind, flexible, version, rng, depth, out);
        }
    }
    if !flexible {
        return;
    }
    let mut tagged: Vec<(u32, Vec<u8>)> = Vec::new();
    for field in schema.fields {
        let Some(tag) = field.tag else { continue };
        if (field.min..=field.max).contains(&version) && rng.below(2) == 0 {
            let mut value = Vec::new();
            build_value(field.kind, true, version, rng, depth, &mut value);
            tagged.push((tag, value));
        }
    }
    if rng.below(4) == 0 {
        tagged.push((1000, vec![7; rng.below(5) as usize]));
    }
    put_varint(out, tagged.len() as u32);
    for (tag, value) in tagged {
        put_varint(out, tag);
        put_varint(out, value.len() as u32);
        out.extend_from_slice(&value);
    }
}

pub fn build_value(
    kind: Kind,
    compact: bool,
    version: i16,
    rng: &mut Rng,
    depth: u32,
    out: &mut Vec<u8>,
) {
    let elements = |rng: &mut Rng| if depth > 3 { 0 } else { rng.below(4) as usize };
    match kind {
        Kind::Fixed(width) => out.extend((0..width).map(|_| rng.next() as u8)),
        Kind::Str => {
            let length = rng.below(9) as usize;
            put_length(out, compact, 2, length);
            out.extend((0..length).map(|_| b'a' + rng.below(26) as u8));
        }
        Kind::Bytes => {
            let length = rng.below(17) as usize;
            put_length(out, compact, 4, length);
            out.extend((0..length).map(|_| rng.next() as u8));
        }
        Kind::Struct(schema) => build_struct(schema, version, rng, depth + 1, out),
        Kind::OptionalStruct(schema) => {
            let present = rng.below(2) == 0;
            out.push(u8::from(present));
            if present {
                build_struct(schema, version, rng, depth + 1, out);
            }
        }
        Kind::Array(element) => {
            let count = elements(rng);
            put_length(out, compact, 4, count);
            for _ in 0..count {
                build_value(*element, compact, version, rng, depth + 1, out);
            }
        }
        Kind::Structs(schema) => {
            let count = elements(rng);
            put_length(out, compact, 4, count);
            for _ in 0..count {
                build_struct(schema, version, rng, depth + 1, out);
            }
        }
    }
}

/// A whole valid response frame (header and body, no length prefix).
pub fn build_frame(api: ApiKey, version: i16, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut out = (rng.next() as i32).to_be_bytes().to_vec();
    if header_version(api, version) >= 1 {
        out.push(0); // no tagged fields in the header
    }
    build_struct(shape_of(api), version, &mut rng, 0, &mut out);
    out
}

// ---- mutations -----------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub enum Mutation {
    Flip {
        at: usize,
        bit: u8,
    },
    /// Writes a huge classic count or length (i32::MAX / i16::MAX) at a position.
    HugeCount {
        at: usize,
    },
    /// Writes the largest compact varint (five bytes) at a position.
    HugeVarint {
        at: usize,
    },
    /// Writes -1 or another negative length.
    Negative {
        at: usize,
        value: i32,
    },
    Truncate {
        keep: usize,
    },
    Insert {
        at: usize,
        byte: u8,
    },
    Remove {
        at: usize,
    },
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    let at = 0usize..4096;
    prop_oneof![
        (at.clone(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        at.clone().prop_map(|at| Mutation::HugeCount { at }),
        at.clone().prop_map(|at| Mutation::HugeVarint { at }),
        (at.clone(), -70_000i32..0).prop_map(|(at, value)| Mutation::Negative { at, value }),
        at.clone().prop_map(|keep| Mutation::Truncate { keep }),
        (at.clone(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        at.prop_map(|at| Mutation::Remove { at }),
    ]
}

pub fn apply(frame: &mut Vec<u8>, mutation: &Mutation) {
    if frame.is_empty() {
        return;
    }
    let len = frame.len();
    let overwrite = |frame: &mut Vec<u8>, at: usize, bytes: &[u8]| {
        for (i, b) in bytes.iter().enumerate() {
            if let Some(slot) = frame.get_mut(at % len + i) {
                *slot = *b;
            }
        }
    };
    match *mutation {
        Mutation::Flip { at, bit } => frame[at % len] ^= 1 << bit,
        Mutation::HugeCount { at } => {
            let value = if at % 2 == 0 {
                i32::MAX.to_be_bytes()
            } else {
                [0x7f, 0xff, 0, 0]
            };
            overwrite(frame, at, &value);
        }
        Mutation::HugeVarint { at } => overwrite(frame, at, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        Mutation::Negative { at, value } => overwrite(frame, at, &value.to_be_bytes()),
        Mutation::Truncate { keep } => frame.truncate(keep % len),
        Mutation::Insert { at, byte } => frame.insert(at % (len + 1), byte),
        Mutation::Remove { at } => {
            frame.remove(at % len);
        }
    }
}
