//! The bounds check every broker response passes before `kafka-protocol` decodes it.
//!
//! `kafka-protocol` 0.18 reserves memory from counts read off the wire before it checks them
//! (`Vec::with_capacity(n)` for every array, `vec![0; n]` for owned strings and bytes, in its
//! `protocol/types.rs`), so a 20-byte answer that claims 2^31 brokers makes the process ask for
//! hundreds of gigabytes and abort. A bounded reader cannot help, because the reservation comes
//! before the first element is read; so this module walks the frame once with the response's
//! shape ([`super::shapes`]), following exactly the path `kafka-protocol` will take: every
//! count, length and tag size is checked against the bytes that remain and every element is
//! walked. Only a frame whose structure fits in its own bytes is handed on, so each element
//! `kafka-protocol` reserves for stands on at least one byte of the frame. It must not judge
//! values (nullability, UTF-8, error codes): `kafka-protocol` and the callers do that.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Decodable;

/// What a field holds on the wire; compact or classic encoding follows the message's version.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A fixed-width value (an integer, a boolean, a UUID) of this many bytes.
    Fixed(usize),
    /// A (nullable) string: an i16 length, or a compact length in flexible versions.
    Str,
    /// (Nullable) bytes or records: an i32 length, or a compact length.
    Bytes,
    /// One nested structure.
    Struct(&'static Schema),
    /// A nested structure behind an i8 "present" marker.
    OptionalStruct(&'static Schema),
    /// An array of scalars (`Fixed` or `Str`).
    Array(&'static Kind),
    /// An array of structures.
    Structs(&'static Schema),
}

/// One field, present in versions `min..=max`; tagged fields carry their tag.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub min: i16,
    pub max: i16,
    pub tag: Option<u32>,
    pub kind: Kind,
}

impl Field {
    fn covers(&self, version: i16) -> bool {
        (self.min..=self.max).contains(&version)
    }
}

/// A message or one of its nested structures.
#[derive(Debug)]
pub struct Schema {
    pub name: &'static str,
    pub min_version: i16,
    pub max_version: i16,
    /// The first version with compact lengths and tagged fields (`i16::MAX`: none).
    pub flexible_from: i16,
    pub fields: &'static [Field],
}

/// Why a frame was refused before decoding; offsets count from the start of the response header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameFault {
    #[error(
        "{structure}.{field} needs {needed} bytes at offset {offset} but only {remaining} remain"
    )]
    Truncated {
        structure: &'static str,
        field: &'static str,
        offset: usize,
        needed: u64,
        remaining: usize,
    },
    #[error(
        "{structure}.{field} claims {count} elements at offset {offset}, more than the {remaining} bytes that remain"
    )]
    CountPastFrame {
        structure: &'static str,
        field: &'static str,
        offset: usize,
        count: u64,
        remaining: usize,
    },
    #[error("{structure}.{field} has the negative length {length} at offset {offset}")]
    NegativeLength {
        structure: &'static str,
        field: &'static str,
        offset: usize,
        length: i64,
    },
    #[error(
        "tagged field {tag} ({structure}.{field}) at offset {offset} declares {declared} bytes but its value takes {used}"
    )]
    TagSizeMismatch {
        structure: &'static str,
        field: &'static str,
        tag: u32,
        offset: usize,
        declared: usize,
        used: usize,
    },
    #[error("no response shape is known for API key {0}; add it to shared/src/wire/shapes.rs")]
    UnknownShape(i16),
    #[error("{structure} v{version} is outside the versions whose shape we know ({min}..={max})")]
    UnsupportedVersion {
        structure: &'static str,
        version: i16,
        min: i16,
        max: i16,
    },
}

/// Why a response did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// The frame's structure does not fit in its bytes: it was never handed to the decoder.
    #[error("malformed response: {0}")]
    Malformed(#[from] FrameFault),
    /// The structure fits, but `kafka-protocol` refused a value (bad UTF-8, a null where none
    /// is allowed, a tag not valid for the version).
    #[error("{0}")]
    Decode(String),
}

/// Checks a response frame (everything after the length prefix) against the shapes of the
/// response header and of `api`'s response at `version`, then decodes it.
pub fn decode_response<T: Decodable>(
    api: ApiKey,
    version: i16,
    header_version: i16,
    frame: Bytes,
) -> Result<T, ResponseError> {
    check_response(api as i16, version, header_version, &frame)?;
    let mut body = frame;
    ResponseHeader::decode(&mut body, header_version)
        .map_err(|e| ResponseError::Decode(format!("response header: {e}")))?;
    T::decode(&mut body, version).map_err(|e| ResponseError::Decode(e.to_string()))
}

/// The check alone: `Ok` means every count and length in `frame` is backed by its bytes.
pub fn check_response(
    api_key: i16,
    version: i16,
    header_version: i16,
    frame: &[u8],
) -> Result<(), FrameFault> {
    let shape = super::shapes::response(api_key).ok_or(FrameFault::UnknownShape(api_key))?;
    let mut cursor = Cursor { frame, at: 0 };
    walk_top(super::shapes::header(), header_version, &mut cursor)?;
    walk_top(shape, version, &mut cursor)
}

fn walk_top(
    schema: &'static Schema,
    version: i16,
    cursor: &mut Cursor<'_>,
) -> Result<(), FrameFault> {
    if !(schema.min_version..=schema.max_version).contains(&version) {
        return Err(FrameFault::UnsupportedVersion {
            structure: schema.name,
            version,
            min: schema.min_version,
            max: schema.max_version,
        });
    }
    walk_struct(schema, version, cursor)
}

/// Where a value sits, for error messages.
#[derive(Clone, Copy)]
struct At {
    structure: &'static str,
    field: &'static str,
}

/// A read position in the frame; `frame` ends where the value being walked must end.
struct Cursor<'a> {
    frame: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn remaining(&self) -> usize {
        self.frame.len() - self.at
    }

    fn take(&mut self, needed: u64, at: At) -> Result<&[u8], FrameFault> {
        let remaining = self.remaining();
        let Some(length) = usize::try_from(needed).ok().filter(|n| *n <= remaining) else {
            return Err(FrameFault::Truncated {
                structure: at.structure,
                field: at.field,
                offset: self.at,
                needed,
                remaining,
            });
        };
        let bytes = &self.frame[self.at..self.at + length];
        self.at += length;
        Ok(bytes)
    }

    /// A big-endian signed integer of 1, 2 or 4 bytes (the only widths of lengths and markers).
    fn int(&mut self, width: usize, at: At) -> Result<i64, FrameFault> {
        let bytes = self.take(width as u64, at)?;
        Ok(match *bytes {
            [a] => i64::from(a as i8),
            [a, b] => i64::from(i16::from_be_bytes([a, b])),
            [a, b, c, d] => i64::from(i32::from_be_bytes([a, b, c, d])),
            _ => 0,
        })
    }

    /// An unsigned varint read as `kafka-protocol` reads it: at most five bytes, the bits past
    /// 32 dropped, so both walks stay on the same bytes.
    fn varint(&mut self, at: At) -> Result<u32, FrameFault> {
        let mut value = 0u32;
        for i in 0..5 {
            let byte = u32::from(self.take(1, at)?[0]);
            value |= (byte & 0x7f).wrapping_shl(i * 7);
            if byte < 0x80 {
                break;
            }
        }
        Ok(value)
    }

    /// A length or count prefix: `None` for null, otherwise the value.
    fn length(
        &mut self,
        compact: bool,
        classic_width: usize,
        at: At,
    ) -> Result<Option<u64>, FrameFault> {
        let offset = self.at;
        if compact {
            return Ok(self.varint(at)?.checked_sub(1).map(u64::from));
        }
        match self.int(classic_width, at)? {
            -1 => Ok(None),
            n if n >= 0 => Ok(Some(n as u64)),
            n => Err(FrameFault::NegativeLength {
                structure: at.structure,
                field: at.field,
                offset,
                length: n,
            }),
        }
    }

    fn count(&mut self, compact: bool, at: At) -> Result<u64, FrameFault> {
        let offset = self.at;
        let count = self.length(compact, 4, at)?.unwrap_or(0);
        let remaining = self.remaining();
        if count > remaining as u64 {
            return Err(FrameFault::CountPastFrame {
                structure: at.structure,
                field: at.field,
                offset,
                count,
                remaining,
            });
        }
        Ok(count)
    }
}

fn walk_struct(
    schema: &'static Schema,
    version: i16,
    cursor: &mut Cursor<'_>,
) -> Result<(), FrameFault> {
    let flexible = version >= schema.flexible_from;
    for field in schema.fields {
        if field.tag.is_none() && field.covers(version) {
            let at = At {
                structure: schema.name,
                field: field.name,
            };
            walk_value(field.kind, flexible, version, cursor, at)?;
        }
    }
    if flexible {
        walk_tagged_fields(schema, version, cursor)?;
    }
    Ok(())
}

/// `kafka-protocol` decodes a known tag's value straight from the buffer, not from a window of
/// the declared size, so a known value must take exactly its declared size: then both walks
/// agree on where the next tag starts.
fn walk_tagged_fields(
    schema: &'static Schema,
    version: i16,
    cursor: &mut Cursor<'_>,
) -> Result<(), FrameFault> {
    let at = At {
        structure: schema.name,
        field: "(tagged fields)",
    };
    // The number of tagged fields is a plain varint (not a length plus one); each takes at
    // least two bytes, so more than the bytes left cannot be real.
    let offset = cursor.at;
    let count = cursor.varint(at)?;
    let remaining = cursor.remaining();
    if u64::from(count) > remaining as u64 {
        return Err(FrameFault::CountPastFrame {
            structure: at.structure,
            field: at.field,
            offset,
            count: u64::from(count),
            remaining,
        });
    }
    for _ in 0..count {
        let tag = cursor.varint(at)?;
        let declared = u64::from(cursor.varint(at)?);
        let offset = cursor.at;
        let value = cursor.take(declared, at)?;
        let known = schema
            .fields
            .iter()
            .find(|f| f.tag == Some(tag) && f.covers(version));
        if let Some(field) = known {
            let at = At {
                structure: schema.name,
                field: field.name,
            };
            let mut window = Cursor {
                frame: value,
                at: 0,
            };
            walk_value(field.kind, true, version, &mut window, at)?;
            if window.at != value.len() {
                return Err(FrameFault::TagSizeMismatch {
                    structure: schema.name,
                    field: field.name,
                    tag,
                    offset,
                    declared: value.len(),
                    used: window.at,
                });
            }
        }
    }
    Ok(())
}

fn walk_value(
    kind: Kind,
    compact: bool,
    version: i16,
    cursor: &mut Cursor<'_>,
    at: At,
) -> Result<(), FrameFault> {
    match kind {
        Kind::Fixed(width) => cursor.take(width as u64, at).map(drop),
        Kind::Str => match cursor.length(compact, 2, at)? {
            Some(length) => cursor.take(length, at).map(drop),
            None => Ok(()),
        },
        Kind::Bytes => match cursor.length(compact, 4, at)? {
            Some(length) => cursor.take(length, at).map(drop),
            None => Ok(()),
        },
        Kind::Struct(schema) => walk_struct(schema, version, cursor),
        Kind::OptionalStruct(schema) => {
            if cursor.int(1, at)? == 1 {
                walk_struct(schema, version, cursor)?;
            }
            Ok(())
        }
        Kind::Array(element) => {
            for _ in 0..cursor.count(compact, at)? {
                walk_value(*element, compact, version, cursor, at)?;
            }
            Ok(())
        }
        Kind::Structs(schema) => {
            for _ in 0..cursor.count(compact, at)? {
                walk_struct(schema, version, cursor)?;
            }
            Ok(())
        }
    }
}
