//! `BUFFER_MEMORY_BYTES` is what it says: the budget a record takes is its encoded size plus
//! what it really holds on the heap while it waits, measured here with a counting allocator.
//!
//! The runtime is single-threaded so nothing else allocates between the two measurements:
//! after `send_all` returns, the records sit in the producer's hand-over to its accumulator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use integration_tests::{shared_broker, unique_name};
use shared::admin::{TopicAdmin, TopicSpec};
use shared::producer::budget::encoded_size;
use shared::producer::{OutgoingRecord, Producer, ProducerConfig};

/// Counts the bytes requested and not yet freed, process-wide.
struct CountingAllocator;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn live_bytes() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

fn order(i: usize) -> OutgoingRecord {
    let order_id = format!("order-{i:06}");
    OutgoingRecord {
        value: format!(
            "{{\"order_id\":\"{order_id}\",\"customer_id\":\"customer-{}\",\"item_id\":\"item-{}\",\"quantity\":{},\"created_at\":\"2026-12-01T09:00:00Z\"}}",
            i % 997,
            i % 100,
            1 + i % 5
        )
        .into_bytes(),
        key: Some(order_id.into_bytes()),
        headers: vec![(Cow::Borrowed("source"), bytes::Bytes::from_static(b"budget-test"))],
        timestamp: chrono::Utc::now(),
        partition: None,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn budget_taken_is_the_encoded_size_plus_what_the_records_hold_on_the_heap() {
    let settings = shared_broker().connection_settings("budget");
    let topic = unique_name("budget");
    TopicAdmin::connect(&settings, Duration::from_secs(10))
        .await
        .expect("admin")
        .create_topics(&[TopicSpec::new(&topic, 1, 1)])
        .await
        .expect("create");
    let config = ProducerConfig {
        // Nothing is sent while we measure.
        linger: Duration::from_secs(60),
        batch_max_bytes: 64 << 20,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(&settings, &topic, config, Duration::from_secs(10))
        .await
        .expect("producer");
    let count = 2000;

    let before = live_bytes();
    let records: Vec<OutgoingRecord> = (0..count).map(order).collect();
    let encoded: usize = records.iter().map(encoded_size).sum();
    let tickets = producer.send_all(records).await.expect("queued");
    let held = (live_bytes() - before) as usize;
    let tickets_vec = tickets.capacity() * size_of::<shared::producer::DeliveryTicket>();
    let budget = producer.stats().buffered_bytes as usize;

    let in_memory = budget - encoded;
    let measured = held - tickets_vec;
    let off_by = in_memory.abs_diff(measured) as f64 / measured as f64;
    assert!(
        off_by < 0.01,
        "budget {budget} = encoded {encoded} + in memory {in_memory}, but the records hold {measured} bytes on the heap ({:.1}% off)",
        off_by * 100.0
    );
    eprintln!(
        "{count} records: budget {budget} B = encoded {encoded} + in memory {in_memory}; heap measured {measured} ({:.2}% off)",
        off_by * 100.0
    );
    // The old count (key + value + headers + 32) was about half of this.
    assert!(budget > 2 * encoded, "budget {budget}, encoded {encoded}");

    producer.flush().await.expect("flushed");
    for ticket in tickets {
        ticket.delivered().await.expect("acknowledged");
    }
    let stats = producer.stats();
    assert_eq!(stats.acknowledged, count as u64);
    assert_eq!(stats.buffered_bytes, 0, "all budget given back");
}
