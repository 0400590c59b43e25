//! Property tests (fuzzing) for the decoding of every broker response we decode ourselves:
//! frames built from each response's shape, at every version, decode with `kafka-protocol` and
//! are consumed exactly (so the shapes in `shared::wire::shapes` match the crate), and any
//! mutation of them, or any bytes at all, decode or fail with a typed error — never a panic,
//! and never an allocation past a bound tied to the frame's size, measured by a counting
//! global allocator in this test binary.
//!
//! `PROPTEST_CASES=20000 cargo test -p shared --test fuzz_responses --release` runs longer.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;
use proptest::prelude::*;
use shared::wire::{FrameFault, ResponseError, check_response, decode_response};

mod response_frames;
use response_frames::{apply, build_frame, every_version, header_version, mutation};

// ---- a counting allocator: live and peak bytes of this thread -------------------------------

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn grew(bytes: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + bytes;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn shrank(bytes: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(bytes)));
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counters are
// const-initialised thread-locals without destructors, so touching them never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size);
        shrank(layout.size());
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `work` and returns what it returned with the most bytes it had allocated at once.
fn peak_allocation<T>(work: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(base));
    let value = work();
    let peak = PEAK.with(Cell::get);
    (value, peak.saturating_sub(base))
}

/// What decoding a frame may cost: each element `kafka-protocol` reserves for stands on at
/// least one byte of the frame, so the cost is linear in the frame. Measured (the test
/// `valid_frames_cost_a_bounded_multiple_of_their_size`): at most 17 bytes per frame byte for
/// frames of 256 bytes and more; the bound leaves room above that.
const BYTES_PER_FRAME_BYTE: usize = 64;
/// Fixed costs independent of the frame: a map node or two, an error message, and the
/// backtrace `anyhow` (inside `kafka-protocol`) captures with each error when `RUST_BACKTRACE`
/// is set — about 5 KiB at the stack depths here.
const FIXED_ALLOWANCE: usize = 64 * 1024;

fn allocation_bound(frame_len: usize) -> usize {
    BYTES_PER_FRAME_BYTE * frame_len + FIXED_ALLOWANCE
}

// ---- every response type we decode, by API key ----------------------------------------------

/// Decodes `frame` as `api`'s response through the guarded path.
fn guarded(api: ApiKey, version: i16, header: i16, frame: Bytes) -> Result<(), ResponseError> {
    macro_rules! by_api {
        ($($key:ident => $response:ty),* $(,)?) => {
            match api {
                $(ApiKey::$key => decode_response::<$response>(api, version, header, frame).map(drop),)*
                _ => unreachable!("no response type listed for {api:?}"),
            }
        };
    }
    by_api! {
        Produce => ProduceResponse, Fetch => FetchResponse, ListOffsets => ListOffsetsResponse,
        Metadata => MetadataResponse, OffsetCommit => OffsetCommitResponse,
        OffsetFetch => OffsetFetchResponse, FindCoordinator => FindCoordinatorResponse,
        JoinGroup => JoinGroupResponse, Heartbeat => HeartbeatResponse,
        LeaveGroup => LeaveGroupResponse, SyncGroup => SyncGroupResponse,
        DescribeGroups => DescribeGroupsResponse, SaslHandshake => SaslHandshakeResponse,
        ApiVersions => ApiVersionsResponse, CreateTopics => CreateTopicsResponse,
        InitProducerId => InitProducerIdResponse, SaslAuthenticate => SaslAuthenticateResponse,
    }
}

/// Decodes `frame` with `kafka-protocol` alone and returns how many bytes were left over.
fn unguarded_leftover(
    api: ApiKey,
    version: i16,
    header: i16,
    frame: Bytes,
) -> Result<usize, String> {
    fn left<T: Decodable>(version: i16, header: i16, mut body: Bytes) -> Result<usize, String> {
        ResponseHeader::decode(&mut body, header).map_err(|e| e.to_string())?;
        T::decode(&mut body, version).map_err(|e| e.to_string())?;
        Ok(body.remaining())
    }
    macro_rules! by_api {
        ($($key:ident => $response:ty),* $(,)?) => {
            match api {
                $(ApiKey::$key => left::<$response>(version, header, frame),)*
                _ => unreachable!("no response type listed for {api:?}"),
            }
        };
    }
    by_api! {
        Produce => ProduceResponse, Fetch => FetchResponse, ListOffsets => ListOffsetsResponse,
        Metadata => MetadataResponse, OffsetCommit => OffsetCommitResponse,
        OffsetFetch => OffsetFetchResponse, FindCoordinator => FindCoordinatorResponse,
        JoinGroup => JoinGroupResponse, Heartbeat => HeartbeatResponse,
        LeaveGroup => LeaveGroupResponse, SyncGroup => SyncGroupResponse,
        DescribeGroups => DescribeGroupsResponse, SaslHandshake => SaslHandshakeResponse,
        ApiVersions => ApiVersionsResponse, CreateTopics => CreateTopicsResponse,
        InitProducerId => InitProducerIdResponse, SaslAuthenticate => SaslAuthenticateResponse,
    }
}

/// Decodes a frame through the guard and checks the one promise made about any input.
fn assert_bounded(api: ApiKey, version: i16, frame: Vec<u8>) -> Result<(), TestCaseError> {
    let length = frame.len();
    let header = header_version(api, version);
    let (_result, peak) = peak_allocation(|| guarded(api, version, header, Bytes::from(frame)));
    prop_assert!(
        peak <= allocation_bound(length),
        "{api:?} v{version}: a {length}-byte frame allocated {peak} bytes (bound {})",
        allocation_bound(length)
    );
    Ok(())
}

/// `PROPTEST_CASES` when set, else `default`.
fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(cases)
}

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn frames_built_from_each_shape_decode_exactly(seed in any::<u64>()) {
        for (api, version) in every_version() {
            let frame = build_frame(api, version, seed);
            let header = header_version(api, version);
            prop_assert_eq!(check_response(api as i16, version, header, &frame), Ok(()));
            let leftover = unguarded_leftover(api, version, header, Bytes::from(frame.clone()));
            prop_assert_eq!(
                leftover, Ok(0),
                "{:?} v{} (seed {}): kafka-protocol read the frame differently", api, version, seed
            );
            prop_assert_eq!(guarded(api, version, header, Bytes::from(frame)), Ok(()));
        }
    }
}

proptest! {
    #![proptest_config(cases(2000))]

    #[test]
    fn mutated_frames_fail_typed_and_bounded(
        which in 0usize..1000,
        seed in any::<u64>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let versions = every_version();
        let (api, version) = versions[which % versions.len()];
        let mut frame = build_frame(api, version, seed);
        for m in &mutations {
            apply(&mut frame, m);
        }
        assert_bounded(api, version, frame)?;
    }

    #[test]
    fn arbitrary_bytes_fail_typed_and_bounded(
        which in 0usize..1000,
        frame in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let versions = every_version();
        let (api, version) = versions[which % versions.len()];
        assert_bounded(api, version, frame)?;
    }
}

// ---- the hostile counts, named ---------------------------------------------------------------

/// Metadata v4: header, throttle time, then the brokers array's count.
fn metadata_claiming_brokers(count: i32) -> Vec<u8> {
    let mut frame = 7i32.to_be_bytes().to_vec();
    frame.extend_from_slice(&0i32.to_be_bytes());
    frame.extend_from_slice(&count.to_be_bytes());
    frame.extend_from_slice(&[0; 8]);
    frame
}

#[test]
fn without_the_guard_a_small_frame_reserves_for_every_element_it_claims() {
    // Why the guard exists: kafka-protocol alone reserves count × element size up front.
    let frame = metadata_claiming_brokers(1_000_000);
    let (result, peak) = peak_allocation(|| {
        let mut body = Bytes::from(frame.clone());
        ResponseHeader::decode(&mut body, 0).and_then(|_| MetadataResponse::decode(&mut body, 4))
    });
    assert!(result.is_err());
    let reserved = 1_000_000 * std::mem::size_of::<metadata_response::MetadataResponseBroker>();
    assert!(
        peak >= reserved,
        "a {}-byte frame reserved {peak} bytes",
        frame.len()
    );
}

#[test]
fn with_the_guard_the_same_frame_is_refused_before_any_reservation() {
    for count in [1_000_000, i32::MAX] {
        let frame = metadata_claiming_brokers(count);
        let (result, peak) =
            peak_allocation(|| guarded(ApiKey::Metadata, 4, 0, Bytes::from(frame.clone())));
        match result {
            Err(ResponseError::Malformed(FrameFault::CountPastFrame {
                structure,
                field,
                count: claimed,
                remaining,
                ..
            })) => {
                assert_eq!((structure, field), ("MetadataResponse", "brokers"));
                assert_eq!((claimed, remaining), (count as u64, 8));
            }
            other => panic!("count {count}: {other:?}"),
        }
        assert!(peak <= FIXED_ALLOWANCE, "refusing cost {peak} bytes");
    }
}

#[test]
fn a_compact_count_past_the_frame_is_refused() {
    // Metadata v12 (flexible): header v1 (correlation id, no tags), throttle, brokers count.
    let mut frame = 7i32.to_be_bytes().to_vec();
    frame.push(0);
    frame.extend_from_slice(&0i32.to_be_bytes());
    frame.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    let result = guarded(ApiKey::Metadata, 12, 1, Bytes::from(frame));
    assert!(
        matches!(
            result,
            Err(ResponseError::Malformed(FrameFault::CountPastFrame {
                count: 4_294_967_294,
                ..
            }))
        ),
        "{result:?}"
    );
}

#[test]
fn a_truncated_frame_names_the_field_it_ends_in() {
    let mut frame = build_frame(ApiKey::InitProducerId, 4, 1);
    frame.truncate(frame.len() - 3);
    let result = guarded(ApiKey::InitProducerId, 4, 1, Bytes::from(frame));
    assert!(
        matches!(
            result,
            Err(ResponseError::Malformed(FrameFault::Truncated {
                structure: "InitProducerIdResponse",
                ..
            }))
        ),
        "{result:?}"
    );
}

#[test]
fn an_api_without_a_shape_is_refused_not_decoded_blindly() {
    assert_eq!(
        check_response(ApiKey::EndTxn as i16, 3, 1, &[0; 16]),
        Err(FrameFault::UnknownShape(ApiKey::EndTxn as i16))
    );
}

#[test]
fn valid_frames_cost_a_bounded_multiple_of_their_size() {
    // The measured cost of decoding well-formed frames (the worst case: nothing fails early),
    // printed so the bound above is a measured one.
    let mut worst = (0.0f64, ApiKey::Produce, 0i16, 0usize, 0usize);
    for seed in 0..200u64 {
        for (api, version) in every_version() {
            let frame = build_frame(api, version, seed);
            let length = frame.len();
            let header = header_version(api, version);
            let (result, peak) =
                peak_allocation(|| guarded(api, version, header, Bytes::from(frame)));
            assert_eq!(result, Ok(()));
            assert!(
                peak <= allocation_bound(length),
                "{api:?} v{version}: {peak} bytes for {length}"
            );
            let ratio = peak as f64 / length as f64;
            if length >= 256 && ratio > worst.0 {
                worst = (ratio, api, version, length, peak);
            }
        }
    }
    eprintln!(
        "worst of frames >= 256 bytes: {:.1} bytes allocated per frame byte ({:?} v{}, {} bytes -> {} allocated)",
        worst.0, worst.1, worst.2, worst.3, worst.4
    );
}

#[test]
fn a_known_tagged_field_must_take_exactly_its_declared_size() {
    // kafka-protocol reads a known tag's value from the stream, not from a window of the
    // declared size; if the two disagreed its walk and ours would part ways after the tag.
    let mut frame = 7i32.to_be_bytes().to_vec();
    frame.push(0); // header v1: no tagged fields
    frame.extend_from_slice(&[0; 10]); // throttle time, error code, session id
    frame.extend_from_slice(&[2, 2, b'a', 2]); // one topic "a", one partition
    frame.extend_from_slice(&[0; 4 + 2 + 8 + 8 + 8]); // index, error, watermarks, log start
    frame.push(1); // no aborted transactions
    frame.extend_from_slice(&[0; 4]); // preferred read replica
    frame.push(1); // empty records
    frame.extend_from_slice(&[1, 0, 20]); // one tagged field: diverging_epoch, 20 bytes declared
    frame.extend_from_slice(&[0; 4 + 8]); // epoch, end offset
    frame.push(0); // its own (empty) tagged fields: 13 bytes in all
    frame.extend_from_slice(&[0; 7]); // the rest of the declared 20
    frame.extend_from_slice(&[0, 0]); // the topic's and the response's tagged fields
    assert_eq!(
        check_response(ApiKey::Fetch as i16, 12, 1, &frame),
        Err(FrameFault::TagSizeMismatch {
            structure: "PartitionData",
            field: "diverging_epoch",
            tag: 0,
            offset: 58,
            declared: 20,
            used: 13,
        })
    );
}
