//! The hostile answers themselves: what the front sends instead of the broker's real answer,
//! built from that answer so everything but the planned fault is genuine.
//!
//! Pure functions of bytes, no I/O and no plan: the front decides which answer to alter. The
//! count replaced is the first array of the response, found with the response's shape from
//! `shared::wire::shapes` rather than a decoder, since no decoder accepts what we write; a
//! batch missing from a Fetch answer is a well-formed answer, so that is `fetch_hole`'s.

use shared::wire::{Kind, shapes};

use super::fetch_hole::{self, Cut, RemovedBatch};
use super::{API_VERSIONS, Hostility};

const FETCH: i16 = 1;

/// A hostile answer ready to send.
pub(super) struct Altered {
    pub(super) frame: Vec<u8>,
    pub(super) then_close: bool,
    /// The batches cut out of a Fetch answer.
    pub(super) removed: Vec<RemovedBatch>,
}

/// The hostile frame that replaces `frame` (prefix included), or `None` when the answer has
/// nothing the hostility can alter (a Fetch hole in an answer without the batch).
pub(super) fn hostile(
    frame: &[u8],
    api_key: i16,
    version: i16,
    hostility: Hostility,
) -> Option<Altered> {
    let body = &frame[4..];
    let (frame, then_close) = match hostility {
        Hostility::OversizedCount => match oversized(body, api_key, version) {
            Some(altered) => (framed(&altered), false),
            // No array to inflate: cut the answer instead, so the plan still bites.
            None => (framed(&body[..body.len() / 2]), false),
        },
        Hostility::TruncatedBody => {
            let keep = header_length(api_key, version) + 1;
            let cut = keep.max(body.len() / 2).min(body.len().saturating_sub(1));
            (framed(&body[..cut]), false)
        }
        Hostility::LengthPastMaximum => {
            let mut out = i32::MAX.to_be_bytes().to_vec();
            out.extend_from_slice(&body[..body.len().min(16)]);
            (out, true)
        }
        Hostility::CutOff => (frame[..4 + body.len() / 2].to_vec(), true),
        Hostility::FirstBatchMissing => {
            return batch_missing(body, api_key, version, Cut::FirstOfTwo);
        }
        Hostility::BatchMissing { base_offset } => {
            return batch_missing(body, api_key, version, Cut::BaseOffset(base_offset));
        }
    };
    Some(Altered {
        frame,
        then_close,
        removed: Vec::new(),
    })
}

/// A Fetch answer with the batch `cut` names removed, if it holds that batch.
fn batch_missing(body: &[u8], api_key: i16, version: i16, cut: Cut) -> Option<Altered> {
    if api_key != FETCH {
        return None;
    }
    let (body, removed) = fetch_hole::remove_batch(body, version, cut)?;
    Some(Altered {
        frame: framed(&body),
        then_close: false,
        removed,
    })
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// The response header's length as real brokers write it: the correlation id, plus an empty
/// tagged-field section in flexible versions (ApiVersions' header is always v0).
fn header_length(api_key: i16, version: i16) -> usize {
    let flexible = api_key != API_VERSIONS
        && shapes::response(api_key).is_some_and(|s| version >= s.flexible_from);
    4 + usize::from(flexible)
}

/// `body` with the count of the response's first top-level array replaced by a huge one.
fn oversized(body: &[u8], api_key: i16, version: i16) -> Option<Vec<u8>> {
    let shape = shapes::response(api_key)?;
    let compact = version >= shape.flexible_from;
    let mut at = header_length(api_key, version);
    for field in shape.fields {
        if field.tag.is_some() || !(field.min..=field.max).contains(&version) {
            continue;
        }
        match field.kind {
            Kind::Fixed(width) => at += width,
            Kind::Str | Kind::Bytes => at += prefixed_length(body, at, compact, field.kind)?,
            Kind::Array(_) | Kind::Structs(_) => {
                let mut altered = body[..at].to_vec();
                if compact {
                    let count_length = varint_length(body, at)?;
                    altered.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
                    altered.extend_from_slice(body.get(at + count_length..)?);
                } else {
                    altered.extend_from_slice(&i32::MAX.to_be_bytes());
                    altered.extend_from_slice(body.get(at + 4..)?);
                }
                return Some(altered);
            }
            Kind::Struct(_) | Kind::OptionalStruct(_) => return None,
        }
    }
    None
}

/// The bytes a string or bytes field takes at `at`, its length prefix included.
fn prefixed_length(body: &[u8], at: usize, compact: bool, kind: Kind) -> Option<usize> {
    if compact {
        let prefix = varint_length(body, at)?;
        let mut value = 0usize;
        for (i, byte) in body.get(at..at + prefix)?.iter().enumerate() {
            value |= usize::from(byte & 0x7f) << (7 * i);
        }
        return Some(prefix + value.saturating_sub(1));
    }
    let width = if matches!(kind, Kind::Str) { 2 } else { 4 };
    let bytes = body.get(at..at + width)?;
    let length = if width == 2 {
        i64::from(i16::from_be_bytes([bytes[0], bytes[1]]))
    } else {
        i64::from(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    };
    Some(width + usize::try_from(length.max(0)).ok()?)
}

fn varint_length(body: &[u8], at: usize) -> Option<usize> {
    let tail = body.get(at..)?;
    tail.iter()
        .take(5)
        .position(|b| b & 0x80 == 0)
        .map(|p| p + 1)
}
