use super::{Change, QueuedEvent, Store, StoreError, event_id};
use crate::proto::StreamEvent;
use async_trait::async_trait;
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Mutex,
};

/// A [`Store`] in memory: nothing survives a restart.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next_seq: i64,
    outbox: BTreeMap<i64, QueuedEvent>,
    /// Stream id → channel.
    streams: HashMap<String, String>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way later
        // calls would misread (each method changes them in one step), so poison is ignored.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl State {
    fn push(&mut self, event: StreamEvent, now_ms: i64) {
        let id = event_id(&event);
        if self.outbox.values().any(|queued| queued.event_id == id) {
            return;
        }
        if let StreamEvent::Closed { stream_id, .. } = &event {
            self.streams.remove(stream_id);
        }
        self.next_seq += 1;
        let queued = QueuedEvent {
            seq: self.next_seq,
            event_id: id,
            event,
            attempts: 0,
            due_ms: now_ms,
        };
        self.outbox.insert(self.next_seq, queued);
    }
}

fn stream_of(event: &StreamEvent) -> &str {
    match event {
        StreamEvent::Available { stream_id, .. } | StreamEvent::Closed { stream_id, .. } => {
            stream_id
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn record(&self, changes: &[Change], now_ms: i64) -> Result<(), StoreError> {
        let mut state = self.state();
        for change in changes {
            match change {
                Change::StreamStarted { channel, stream_id } => {
                    state.streams.insert(stream_id.clone(), channel.clone());
                }
                Change::Event(event) => state.push(event.clone(), now_ms),
            }
        }
        Ok(())
    }

    async fn close_remembered_streams(&self, now_ms: i64) -> Result<usize, StoreError> {
        let mut state = self.state();
        let mut streams: Vec<(String, String)> = state.streams.drain().collect();
        streams.sort();
        let count = streams.len();
        for (stream_id, channel) in streams {
            state.push(StreamEvent::Closed { channel, stream_id }, now_ms);
        }
        Ok(count)
    }

    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<QueuedEvent>, StoreError> {
        let state = self.state();
        let mut seen = HashSet::new();
        let mut due = Vec::new();
        for queued in state.outbox.values() {
            // Only the oldest event of each stream may go.
            if seen.insert(stream_of(&queued.event)) && queued.due_ms <= now_ms {
                due.push(queued.clone());
                if due.len() == limit {
                    break;
                }
            }
        }
        Ok(due)
    }

    async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.state().outbox.values().map(|q| q.due_ms).min())
    }

    async fn delivered(&self, seqs: &[i64]) -> Result<(), StoreError> {
        let mut state = self.state();
        for seq in seqs {
            state.outbox.remove(seq);
        }
        Ok(())
    }

    async fn retry_at(&self, seq: i64, attempts: u32, due_ms: i64) -> Result<(), StoreError> {
        if let Some(queued) = self.state().outbox.get_mut(&seq) {
            queued.attempts = attempts;
            queued.due_ms = due_ms;
        }
        Ok(())
    }

    async fn queued(&self) -> Result<usize, StoreError> {
        Ok(self.state().outbox.len())
    }
}
