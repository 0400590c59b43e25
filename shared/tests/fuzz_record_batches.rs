//! Property tests (fuzzing) for the record-batch decoder that reads what a broker sends in a
//! Fetch response: any bytes, and any mutation of a valid batch, decode to records or to an
//! error naming a batch offset — never a panic — and a valid batch of any records round-trips.
//!
//! `PROPTEST_CASES=100000 cargo test -p shared --test fuzz_record_batches --release` runs longer.

use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;
use shared::group::fetch::{AbortedTransactions, Decoded, decode, encode};

type Record = (Option<Vec<u8>>, Option<Vec<u8>>, Vec<(String, Vec<u8>)>);

fn record() -> impl Strategy<Value = Record> {
    (
        prop::option::of(prop::collection::vec(any::<u8>(), 0..32)),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..256)),
        prop::collection::vec(
            ("[a-z-]{1,12}", prop::collection::vec(any::<u8>(), 0..16)),
            0..3,
        ),
    )
}

fn encode_batch(base_offset: i64, records: &[Record]) -> Vec<u8> {
    let headers: Vec<Vec<(&str, &[u8])>> = records
        .iter()
        .map(|(_, _, h)| h.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect())
        .collect();
    let shaped: Vec<encode::PlainRecord<'_>> = records
        .iter()
        .zip(&headers)
        .map(|((k, v, _), h)| (k.as_deref(), v.as_deref(), h.as_slice()))
        .collect();
    let section = encode::records(&shaped);
    encode::batch(base_offset, records.len() as i32, 0, -1, &section).to_vec()
}

/// Decodes `data` as the answer to a fetch at offset `from`.
fn decode_bytes(
    data: Vec<u8>,
    from: i64,
) -> (Decoded, Result<(), shared::group::fetch::BatchError>) {
    let mut decoded = Decoded::default();
    let topic: Arc<str> = Arc::from("fuzz");
    let outcome = decode(
        &topic,
        0,
        Bytes::from(data),
        from,
        &mut AbortedTransactions::default(),
        &mut decoded,
    );
    (decoded, outcome)
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode_bytes(data, 0);
    }

    #[test]
    fn valid_batches_round_trip(base in 0i64..1_000_000, records in prop::collection::vec(record(), 1..20)) {
        let (decoded, outcome) = decode_bytes(encode_batch(base, &records), base);
        prop_assert!(outcome.is_ok());
        prop_assert_eq!(decoded.next_offset, Some(base + records.len() as i64));
        prop_assert_eq!(decoded.records.len(), records.len());
        for (got, (key, value, headers)) in decoded.records.iter().zip(&records) {
            prop_assert_eq!(got.key.as_deref(), key.as_deref());
            prop_assert_eq!(got.value.as_deref(), value.as_deref());
            prop_assert_eq!(got.headers.len(), headers.len());
        }
    }

    /// A flipped, cut or inserted byte anywhere in a valid batch is caught (mostly by the
    /// CRC) or decodes to something, but never panics and never delivers part of a bad batch.
    #[test]
    fn mutated_batches_never_panic(
        records in prop::collection::vec(record(), 1..10),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        kind in 0u8..3,
    ) {
        let mut data = encode_batch(0, &records);
        let i = at.index(data.len());
        match kind {
            0 => data[i] ^= byte | 1,
            1 => data.truncate(i),
            _ => data.insert(i, byte),
        }
        let (decoded, outcome) = decode_bytes(data, 0);
        if outcome.is_err() {
            prop_assert!(decoded.records.is_empty());
        }
    }
}
