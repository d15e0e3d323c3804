//! What the coordinator keeps across restarts: the outbox of event callbacks not yet delivered,
//! and the streams accepted and not yet closed (so their `stream-closed` can be sent after a
//! restart).
//!
//! A [`Store`] is memory ([`MemoryStore`], lost on restart: for tests and embedders that need no
//! durability), SQLite (the default, a file) or PostgreSQL ([`SqlStore`]). Every implementation
//! passes the same conformance suite.

mod memory;
mod sql;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

use crate::proto::StreamEvent;
use async_trait::async_trait;

pub use memory::MemoryStore;
pub use sql::SqlStore;

/// A callback waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEvent {
    /// Its place in the outbox: events are delivered in this order per stream.
    pub seq: i64,
    /// Sent as `x-event-id`; receivers de-duplicate by it.
    pub event_id: String,
    /// The event.
    pub event: StreamEvent,
    /// Failed deliveries so far.
    pub attempts: u32,
    /// Not to be sent before this time (ms since the Unix epoch).
    pub due_ms: i64,
}

/// A store that could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("coordinator store: {0}")]
pub struct StoreError(#[from] pub sqlx::Error);

/// The event id of an event: the same event always gets the same id, so that an encoder
/// reporting a stream twice, or a delivery retried after a crash, is recognisably a duplicate.
/// Stream ids are unique (time, counter and random bits), so ids never collide across streams.
pub fn event_id(event: &StreamEvent) -> String {
    match event {
        StreamEvent::Available {
            stream_id,
            stream_type,
            resolution,
            ..
        } => format!("{stream_id}.available.{stream_type}.{resolution}"),
        StreamEvent::Closed { stream_id, .. } => format!("{stream_id}.closed"),
    }
}

/// One change to the durable state; [`Store::record`] applies several in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// Remember an accepted stream until its `stream-closed` is queued.
    StreamStarted {
        /// The channel.
        channel: String,
        /// The stream.
        stream_id: String,
    },
    /// Queue an event for delivery (an event already queued with the same id is left alone).
    /// A `stream-closed` also forgets its stream.
    Event(StreamEvent),
}

/// Durable coordinator state. Methods are atomic: a crash leaves each either done or not.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies `changes`, in order, in one transaction (the coordinator commits everything a
    /// burst of control messages changed at once).
    async fn record(&self, changes: &[Change], now_ms: i64) -> Result<(), StoreError>;

    /// Remembers an accepted stream until its `stream-closed` is queued.
    async fn stream_started(
        &self,
        channel: &str,
        stream_id: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let change = Change::StreamStarted {
            channel: channel.to_owned(),
            stream_id: stream_id.to_owned(),
        };
        self.record(&[change], now_ms).await
    }

    /// Queues `event` for delivery at `now_ms`; see [`Change::Event`].
    async fn enqueue(&self, event: &StreamEvent, now_ms: i64) -> Result<(), StoreError> {
        self.record(&[Change::Event(event.clone())], now_ms).await
    }

    /// At start-up: queues `stream-closed` for every stream still remembered (they were active
    /// when the coordinator stopped) and forgets them. Returns how many.
    async fn close_remembered_streams(&self, now_ms: i64) -> Result<usize, StoreError>;

    /// Up to `limit` events that may be sent at `now_ms`, oldest first: due, and with no older
    /// event of the same stream still queued (a stream's events arrive in order).
    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<QueuedEvent>, StoreError>;

    /// When the earliest queued event is due, if any is queued.
    async fn next_due(&self) -> Result<Option<i64>, StoreError>;

    /// These events were delivered: they leave the outbox.
    async fn delivered(&self, seqs: &[i64]) -> Result<(), StoreError>;

    /// A delivery failed: try again at `due_ms`.
    async fn retry_at(&self, seq: i64, attempts: u32, due_ms: i64) -> Result<(), StoreError>;

    /// Events in the outbox.
    async fn queued(&self) -> Result<usize, StoreError>;
}
