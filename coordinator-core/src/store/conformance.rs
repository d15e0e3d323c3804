//! The behaviour every [`Store`] must have, as one suite that each implementation runs
//! (`conformance` feature; the PostgreSQL run lives in the workspace's `tests` crate).

use super::{Change, Store, event_id};
use crate::proto::StreamEvent;

fn available(stream_id: &str, resolution: &str) -> StreamEvent {
    StreamEvent::Available {
        channel: "ch".into(),
        stream_id: stream_id.into(),
        stream_type: "HLS-LIVE".into(),
        resolution: resolution.into(),
        index_file: format!("/hls/ch/{stream_id}/{resolution}/live.m3u8"),
    }
}

fn closed(stream_id: &str) -> StreamEvent {
    StreamEvent::Closed {
        channel: "ch".into(),
        stream_id: stream_id.into(),
    }
}

/// Runs every check on `store`, which must be empty. Panics on the first failure.
pub async fn run(store: &dyn Store) {
    events_come_out_in_order_with_their_ids(store).await;
    a_failed_event_holds_back_later_events_of_its_stream_only(store).await;
    duplicates_are_queued_once(store).await;
    streams_active_at_a_restart_get_their_stream_closed(store).await;
    a_batch_of_changes_applies_in_order(store).await;
}

async fn events_come_out_in_order_with_their_ids(store: &dyn Store) {
    let first = available("s1", "1280x720-30");
    store.enqueue(&first, 1_000).await.expect("queued");
    store.enqueue(&closed("s1"), 1_000).await.expect("queued");
    store.enqueue(&closed("s2"), 1_000).await.expect("queued");
    assert_eq!(store.queued().await.expect("counted"), 3);
    assert!(
        store.due(999, 10).await.expect("read").is_empty(),
        "nothing is due before its time"
    );
    assert_eq!(store.next_due().await.expect("read"), Some(1_000));

    let due = store.due(1_000, 10).await.expect("read");
    let events: Vec<_> = due.iter().map(|q| q.event.clone()).collect();
    assert_eq!(
        events,
        vec![first.clone(), closed("s2")],
        "s1's close waits for its availability"
    );
    assert_eq!(due[0].event_id, event_id(&first));
    assert_eq!(due[0].attempts, 0);
    assert!(due[0].seq < due[1].seq);
    assert_eq!(store.due(1_000, 1).await.expect("read").len(), 1, "limit");

    store.delivered(&[due[0].seq]).await.expect("delivered");
    store.delivered(&[due[1].seq]).await.expect("delivered");
    let due = store.due(1_000, 10).await.expect("read");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].event, closed("s1"));
    store.delivered(&[due[0].seq]).await.expect("delivered");
    assert_eq!(store.queued().await.expect("counted"), 0);
    assert_eq!(store.next_due().await.expect("read"), None);
}

async fn a_failed_event_holds_back_later_events_of_its_stream_only(store: &dyn Store) {
    store
        .enqueue(&available("s3", "ORIGINAL"), 2_000)
        .await
        .expect("queued");
    store.enqueue(&closed("s3"), 2_000).await.expect("queued");
    store.enqueue(&closed("s4"), 2_000).await.expect("queued");
    let due = store.due(2_000, 10).await.expect("read");
    assert_eq!(due.len(), 2);
    store
        .retry_at(due[0].seq, 1, 5_000)
        .await
        .expect("rescheduled");
    store.delivered(&[due[1].seq]).await.expect("delivered");

    assert!(
        store.due(4_999, 10).await.expect("read").is_empty(),
        "s3's close must not overtake its availability"
    );
    assert_eq!(store.next_due().await.expect("read"), Some(2_000));
    let due = store.due(5_000, 10).await.expect("read");
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].attempts, due[0].due_ms), (1, 5_000));
    assert_eq!(due[0].event, available("s3", "ORIGINAL"));
    store.delivered(&[due[0].seq]).await.expect("delivered");
    let due = store.due(5_000, 10).await.expect("read");
    assert_eq!(due[0].event, closed("s3"));
    store.delivered(&[due[0].seq]).await.expect("delivered");
}

async fn duplicates_are_queued_once(store: &dyn Store) {
    store
        .enqueue(&available("s5", "ORIGINAL"), 3_000)
        .await
        .expect("queued");
    store
        .enqueue(&available("s5", "ORIGINAL"), 3_001)
        .await
        .expect("queued");
    assert_eq!(store.queued().await.expect("counted"), 1);
    let due = store.due(3_001, 10).await.expect("read");
    store.delivered(&[due[0].seq]).await.expect("delivered");
}

async fn streams_active_at_a_restart_get_their_stream_closed(store: &dyn Store) {
    store
        .stream_started("ch", "s6", 4_000)
        .await
        .expect("remembered");
    store
        .stream_started("ch", "s7", 4_000)
        .await
        .expect("remembered");
    store.enqueue(&closed("s7"), 4_100).await.expect("queued");
    // s7 was closed (and forgotten with it); only s6 was still active.
    assert_eq!(
        store
            .close_remembered_streams(5_000)
            .await
            .expect("replayed"),
        1
    );
    assert_eq!(
        store
            .close_remembered_streams(5_000)
            .await
            .expect("replayed"),
        0
    );
    let due = store.due(5_000, 10).await.expect("read");
    let events: Vec<_> = due.iter().map(|q| q.event.clone()).collect();
    assert_eq!(events, vec![closed("s7"), closed("s6")]);
    for queued in due {
        store.delivered(&[queued.seq]).await.expect("delivered");
    }
    assert_eq!(store.queued().await.expect("counted"), 0);
}

async fn a_batch_of_changes_applies_in_order(store: &dyn Store) {
    let started = |stream_id: &str| Change::StreamStarted {
        channel: "ch".into(),
        stream_id: stream_id.into(),
    };
    let batch = [
        started("s8"),
        Change::Event(available("s8", "ORIGINAL")),
        Change::Event(closed("s8")),
        started("s10"),
    ];
    store.record(&batch, 6_000).await.expect("recorded");
    store.record(&[], 6_000).await.expect("nothing to record");
    // s8 was closed within the batch; only s10 is still active.
    assert_eq!(
        store
            .close_remembered_streams(6_000)
            .await
            .expect("replayed"),
        1
    );
    let due = store.due(6_000, 10).await.expect("read");
    let events: Vec<_> = due.iter().map(|q| q.event.clone()).collect();
    assert_eq!(events, vec![available("s8", "ORIGINAL"), closed("s10")]);
    let seqs: Vec<i64> = due.iter().map(|q| q.seq).collect();
    store.delivered(&seqs).await.expect("delivered");
    let due = store.due(6_000, 10).await.expect("read");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].event, closed("s8"));
    store.delivered(&[due[0].seq]).await.expect("delivered");
    store.delivered(&[]).await.expect("nothing delivered");
    assert_eq!(store.queued().await.expect("counted"), 0);
}

#[cfg(test)]
mod tests_conformance {
    use crate::store::{MemoryStore, SqlStore};

    #[tokio::test]
    async fn memory_store() {
        super::run(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn sqlite_store() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("coordinator.sqlite3");
        super::run(&SqlStore::sqlite(&path).await.expect("opened")).await;
        // The tables survive reopening, and reopening is idempotent.
        let store = SqlStore::open(&format!("sqlite://{}", path.display()))
            .await
            .expect("reopened");
        crate::store::Store::stream_started(&store, "ch", "s9", 1)
            .await
            .expect("written");
    }
}
