//! Live streams: one publisher each, any number of consumers (RTMP players, the HLS packager).
//!
//! A stream's frames go into one bounded broadcast ring shared by every consumer; the bytes are
//! `Bytes`, shared, never copied per consumer. The publisher never waits: a consumer that falls
//! more than the ring behind loses its place and resumes at the next keyframe. A new consumer
//! starts with the metadata, the sequence headers and the frames since the last keyframe (the
//! GOP cache, bounded in bytes).

use crate::{
    media::{MediaFrame, MediaKind},
    verify::PublishOptions,
};
use bytes::Bytes;
use rml_rtmp::sessions::StreamMetadata;
use std::{
    collections::HashMap,
    fmt,
    sync::{
        Arc, Mutex, MutexGuard, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};
use tokio::sync::{Notify, broadcast};

/// What a cached frame costs beyond its bytes (the shared frame and its place in the cache),
/// charged against the GOP cache's bound.
const FRAME_OVERHEAD: usize = 128;

/// A frame as the ring holds it: shared by every consumer, with its RTMP chunks made once, by
/// the first player that needs them.
pub(crate) struct SharedFrame {
    pub(crate) frame: MediaFrame,
    rtmp_chunks: OnceLock<Bytes>,
}

impl SharedFrame {
    fn new(frame: MediaFrame) -> Arc<Self> {
        Arc::new(Self {
            frame,
            rtmp_chunks: OnceLock::new(),
        })
    }

    /// The frame chunked for message stream 1 at the server's chunk size, shared by all players.
    pub(crate) fn rtmp_chunks(&self) -> Bytes {
        self.rtmp_chunks
            .get_or_init(|| {
                use crate::server::chunks::{OUTBOUND_CHUNK_SIZE, SHARED_STREAM_ID, chunk};
                chunk(&self.frame, SHARED_STREAM_ID, OUTBOUND_CHUNK_SIZE)
            })
            .clone()
    }
}

/// A stream's name: `rtmp://host/<app>/<key>`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StreamName {
    /// The RTMP application.
    pub app: String,
    /// The stream key.
    pub key: String,
}

impl fmt::Debug for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys are secrets; logs carry the app only.
        write!(f, "StreamName {{ app: {:?}, key: [redacted] }}", self.app)
    }
}

#[derive(Default)]
struct StreamState {
    /// `None` once the publisher has left: consumers then see the end.
    sender: Option<broadcast::Sender<Arc<SharedFrame>>>,
    /// The verifier's options; `None` until the key is verified, and nobody may consume before.
    options: Option<PublishOptions>,
    metadata: Option<StreamMetadata>,
    video_header: Option<Arc<SharedFrame>>,
    audio_header: Option<Arc<SharedFrame>>,
    gop: Vec<Arc<SharedFrame>>,
    gop_bytes: usize,
    /// The GOP outgrew its bound: cache nothing until the next keyframe.
    gop_overflowed: bool,
    /// Whether the stream has carried video (consumers then resume at keyframes).
    has_video: bool,
}

/// A stream being published.
struct LiveStream {
    state: Mutex<StreamState>,
    /// Raised to make the publisher leave (the operator ended the stream). A permit is kept
    /// when nobody waits yet, so a request is never lost.
    end: Arc<Notify>,
    /// Bumped each time the metadata changes, so that players are sent the new one; read
    /// without the lock on every frame.
    metadata_version: AtomicU64,
}

impl LiveStream {
    fn state(&self) -> MutexGuard<'_, StreamState> {
        // Nothing panics while holding this lock; a poisoned lock still holds consistent data.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Every live stream of a server, by name.
#[derive(Clone)]
pub(crate) struct Streams {
    live: Arc<Mutex<HashMap<StreamName, Arc<LiveStream>>>>,
    ring_frames: usize,
    gop_cache_bytes: usize,
}

impl Streams {
    pub(crate) fn new(ring_frames: usize, gop_cache_bytes: usize) -> Self {
        Self {
            live: Arc::default(),
            ring_frames,
            gop_cache_bytes,
        }
    }

    fn live(&self) -> MutexGuard<'_, HashMap<StreamName, Arc<LiveStream>>> {
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Claims `name` for a publisher, or `None` if somebody publishes it already. The claim is
    /// released when the returned slot is dropped.
    pub(crate) fn claim(&self, name: &StreamName) -> Option<PublisherSlot> {
        let mut live = self.live();
        if live.contains_key(name) {
            return None;
        }
        let (sender, _) = broadcast::channel(self.ring_frames);
        let state = StreamState {
            sender: Some(sender),
            ..StreamState::default()
        };
        let stream = Arc::new(LiveStream {
            state: Mutex::new(state),
            end: Arc::new(Notify::new()),
            metadata_version: AtomicU64::new(0),
        });
        live.insert(name.clone(), Arc::clone(&stream));
        Some(PublisherSlot {
            streams: self.clone(),
            name: name.clone(),
            stream,
            gop_cache_bytes: self.gop_cache_bytes,
        })
    }

    /// Starts consuming `name`, if it is being published by a verified publisher.
    pub(crate) fn subscribe(&self, name: &StreamName) -> Option<Subscription> {
        let stream = self.live().get(name).cloned()?;
        let state = stream.state();
        let options = state.options.clone()?;
        let receiver = state.sender.as_ref()?.subscribe();
        // What the consumer can read now counts as seen (a player is sent it on play).
        let metadata_seen = stream.metadata_version.load(Ordering::Acquire);
        let mut start = Vec::with_capacity(state.gop.len() + 2);
        start.extend(state.video_header.iter().cloned());
        start.extend(state.audio_header.iter().cloned());
        start.extend(state.gop.iter().cloned());
        drop(state);
        Some(Subscription {
            stream,
            options,
            start,
            receiver,
            waiting_for_keyframe: false,
            skipped: 0,
            metadata_seen,
        })
    }

    /// Names being published.
    pub(crate) fn names(&self) -> Vec<StreamName> {
        self.live().keys().cloned().collect()
    }

    /// Asks the publisher of `name` to leave; `false` if nobody publishes it.
    pub(crate) fn end(&self, name: &StreamName) -> bool {
        match self.live().get(name) {
            Some(stream) => {
                stream.end.notify_one();
                true
            }
            None => false,
        }
    }
}

/// A publisher's hold on its stream name; dropping it ends the stream.
pub(crate) struct PublisherSlot {
    streams: Streams,
    name: StreamName,
    stream: Arc<LiveStream>,
    gop_cache_bytes: usize,
}

impl PublisherSlot {
    /// Records the verifier's options; consumers are let in only after this. (The name is
    /// claimed before verification so that a second publisher is refused at once.)
    pub(crate) fn verified(&self, options: PublishOptions) {
        self.stream.state().options = Some(options);
    }

    pub(crate) fn set_metadata(&self, metadata: StreamMetadata) {
        let mut state = self.stream.state();
        state.metadata = Some(metadata);
        self.stream.metadata_version.fetch_add(1, Ordering::AcqRel);
    }

    /// Notified when the stream is to end ([`Streams::end`]): the publisher should leave.
    pub(crate) fn end_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.stream.end)
    }

    /// Hands a frame to every consumer; never waits.
    pub(crate) fn push(&self, frame: MediaFrame) {
        let frame = SharedFrame::new(frame);
        let mut state = self.stream.state();
        state.has_video |= frame.frame.kind == MediaKind::Video;
        if frame.frame.is_sequence_header() {
            match frame.frame.kind {
                MediaKind::Video => state.video_header = Some(Arc::clone(&frame)),
                MediaKind::Audio => state.audio_header = Some(Arc::clone(&frame)),
            }
        } else {
            self.cache(&mut state, &frame);
        }
        if let Some(sender) = &state.sender {
            // Err only means nobody consumes right now.
            let _ = sender.send(frame);
        }
    }

    fn cache(&self, state: &mut StreamState, shared: &Arc<SharedFrame>) {
        let frame = &shared.frame;
        if frame.is_keyframe() {
            state.gop.clear();
            state.gop_bytes = 0;
            state.gop_overflowed = false;
        } else if state.gop.is_empty() && frame.kind == MediaKind::Video || state.gop_overflowed {
            // Video before the first keyframe cannot start a player; nor can a broken GOP.
            return;
        }
        // Each cached frame costs its bytes and its bookkeeping.
        let cost = frame.data.len() + FRAME_OVERHEAD;
        if state.gop_bytes + cost > self.gop_cache_bytes {
            state.gop.clear();
            state.gop_bytes = 0;
            state.gop_overflowed = true;
            return;
        }
        state.gop_bytes += cost;
        state.gop.push(Arc::clone(shared));
    }
}

impl Drop for PublisherSlot {
    fn drop(&mut self) {
        let mut live = self.streams.live();
        // Ending the stream: consumers' receivers close once the sender is gone.
        self.stream.state().sender = None;
        if live
            .get(&self.name)
            .is_some_and(|current| Arc::ptr_eq(current, &self.stream))
        {
            live.remove(&self.name);
        }
    }
}

/// A consumer's view of a live stream.
pub struct Subscription {
    stream: Arc<LiveStream>,
    /// The options the key verifier decided for the stream.
    pub options: PublishOptions,
    start: Vec<Arc<SharedFrame>>,
    receiver: broadcast::Receiver<Arc<SharedFrame>>,
    waiting_for_keyframe: bool,
    skipped: u64,
    metadata_seen: u64,
}

impl Subscription {
    /// The next frame: first the sequence headers and the current GOP, then live frames. After
    /// falling behind, frames are skipped up to the next keyframe. `None` when the stream ends.
    pub async fn next(&mut self) -> Option<MediaFrame> {
        self.next_shared().await.map(|shared| shared.frame.clone())
    }

    /// [`Subscription::next`], as the ring holds the frame.
    pub(crate) async fn next_shared(&mut self) -> Option<Arc<SharedFrame>> {
        if !self.start.is_empty() {
            return Some(self.start.remove(0));
        }
        loop {
            match self.receiver.recv().await {
                Ok(shared) => {
                    let frame = &shared.frame;
                    if self.waiting_for_keyframe
                        && !frame.is_keyframe()
                        && !frame.is_sequence_header()
                    {
                        self.skipped += 1;
                        continue;
                    }
                    if frame.is_keyframe() {
                        self.waiting_for_keyframe = false;
                    }
                    return Some(shared);
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    self.skipped += missed;
                    // Resume at a keyframe; an audio-only stream has none, and resumes at once.
                    self.waiting_for_keyframe = self.stream.state().has_video;
                    metrics::counter!("media_ingest_consumer_lag_skips_total").increment(1);
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The publisher's latest metadata (`onMetaData`), if it sent any. Publishers send it just
    /// after they are accepted, so a consumer that starts at once may see it only later.
    pub fn metadata(&self) -> Option<StreamMetadata> {
        self.stream.state().metadata.clone()
    }

    /// The metadata, if it changed since this consumer subscribed or last asked: players are
    /// sent it before their next frame.
    pub(crate) fn changed_metadata(&mut self) -> Option<StreamMetadata> {
        let version = self.stream.metadata_version.load(Ordering::Acquire);
        if version == self.metadata_seen {
            return None;
        }
        self.metadata_seen = version;
        self.stream.state().metadata.clone()
    }

    /// Frames this consumer missed by falling behind.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

#[cfg(test)]
mod tests_streams {
    use super::*;
    use bytes::Bytes;

    fn name() -> StreamName {
        StreamName {
            app: "live".into(),
            key: "k".into(),
        }
    }

    fn video(timestamp: u32, first: u8) -> MediaFrame {
        MediaFrame {
            kind: MediaKind::Video,
            timestamp,
            data: Bytes::from(vec![first, 1, 0, 0, 0, 9, 9]),
        }
    }

    fn audio(timestamp: u32) -> MediaFrame {
        MediaFrame {
            kind: MediaKind::Audio,
            timestamp,
            data: Bytes::from_static(&[0xaf, 1, 5]),
        }
    }

    fn header() -> MediaFrame {
        MediaFrame {
            kind: MediaKind::Video,
            timestamp: 0,
            data: Bytes::from_static(&[0x17, 0, 0, 0, 0]),
        }
    }

    #[test]
    fn consumers_learn_of_metadata_that_arrives_or_changes_after_they_started() {
        let streams = Streams::new(16, 1 << 20);
        let slot = streams.claim(&name()).expect("free");
        slot.verified(PublishOptions::default());
        let mut early = streams.subscribe(&name()).expect("live");
        assert_eq!(early.changed_metadata(), None);
        let mut metadata = StreamMetadata::new();
        metadata.video_width = Some(640);
        slot.set_metadata(metadata.clone());
        assert_eq!(early.changed_metadata(), Some(metadata.clone()));
        assert_eq!(early.changed_metadata(), None, "once per change");
        // A consumer that starts now reads it with metadata(): nothing new to tell it.
        let mut late = streams.subscribe(&name()).expect("live");
        assert_eq!(late.metadata(), Some(metadata.clone()));
        assert_eq!(late.changed_metadata(), None);
        metadata.video_width = Some(1280);
        slot.set_metadata(metadata.clone());
        assert_eq!(late.changed_metadata(), Some(metadata.clone()));
        assert_eq!(early.changed_metadata(), Some(metadata));
    }

    #[tokio::test]
    async fn one_publisher_per_name_until_it_leaves() {
        let streams = Streams::new(16, 1 << 20);
        let slot = streams.claim(&name()).expect("free");
        assert!(streams.claim(&name()).is_none());
        assert!(streams.subscribe(&name()).is_none(), "not verified yet");
        slot.verified(PublishOptions::default());
        assert!(streams.subscribe(&name()).is_some());
        assert_eq!(streams.names(), vec![name()]);
        drop(slot);
        assert!(streams.claim(&name()).is_some());
    }

    #[tokio::test]
    async fn a_late_consumer_starts_with_headers_and_the_current_gop() {
        let streams = Streams::new(16, 1 << 20);
        let slot = streams.claim(&name()).expect("free");
        slot.verified(PublishOptions::default());
        slot.push(header());
        slot.push(video(0, 0x27)); // before any keyframe: useless to a new player
        slot.push(video(40, 0x17));
        slot.push(audio(50));
        slot.push(video(80, 0x27));
        let mut consumer = streams.subscribe(&name()).expect("live");
        let first: Vec<_> = [
            consumer.next().await,
            consumer.next().await,
            consumer.next().await,
            consumer.next().await,
        ]
        .into_iter()
        .map(|f| f.map(|f| (f.timestamp, f.is_sequence_header(), f.is_keyframe())))
        .collect();
        assert_eq!(
            first,
            vec![
                Some((0, true, false)),
                Some((40, false, true)),
                Some((50, false, false)),
                Some((80, false, false))
            ]
        );
        slot.push(video(120, 0x27));
        assert_eq!(consumer.next().await.map(|f| f.timestamp), Some(120));
        drop(slot);
        assert_eq!(consumer.next().await, None, "the stream ended");
    }

    #[tokio::test]
    async fn a_consumer_that_falls_behind_resumes_at_a_keyframe_and_the_publisher_never_waits() {
        let streams = Streams::new(4, 1 << 20);
        let slot = streams.claim(&name()).expect("free");
        slot.verified(PublishOptions::default());
        let mut consumer = streams.subscribe(&name()).expect("live");
        for t in 0..20 {
            slot.push(video(t * 40, if t == 18 { 0x17 } else { 0x27 }));
        }
        slot.push(video(800, 0x27));
        let resumed = consumer.next().await.expect("a frame");
        assert!(resumed.is_keyframe(), "resumed at {resumed:?}");
        assert_eq!(resumed.timestamp, 18 * 40);
        assert!(consumer.skipped() >= 16);
        assert_eq!(consumer.next().await.map(|f| f.timestamp), Some(19 * 40));
        assert_eq!(consumer.next().await.map(|f| f.timestamp), Some(800));
    }

    #[tokio::test]
    async fn every_consumer_gets_the_same_bytes_and_the_same_rtmp_chunks() {
        let streams = Streams::new(16, 1 << 20);
        let slot = streams.claim(&name()).expect("free");
        slot.verified(PublishOptions::default());
        let (mut first, mut second) = (
            streams.subscribe(&name()).expect("live"),
            streams.subscribe(&name()).expect("live"),
        );
        slot.push(video(0, 0x17));
        let (a, b) = (
            first.next_shared().await.expect("a frame"),
            second.next_shared().await.expect("a frame"),
        );
        assert!(Arc::ptr_eq(&a, &b), "one frame for all consumers");
        assert_eq!(
            a.rtmp_chunks().as_ptr(),
            b.rtmp_chunks().as_ptr(),
            "chunked once, not once per player"
        );
    }

    #[tokio::test]
    async fn an_audio_only_consumer_resumes_at_once_after_falling_behind() {
        let streams = Streams::new(4, 1 << 20);
        let slot = streams.claim(&name()).expect("free");
        slot.verified(PublishOptions::default());
        let mut consumer = streams.subscribe(&name()).expect("live");
        for t in 0..10 {
            slot.push(audio(t * 23));
        }
        let resumed = consumer.next().await.expect("a frame after the lag");
        assert_eq!(resumed.kind, MediaKind::Audio);
        assert!(consumer.skipped() > 0);
    }

    #[tokio::test]
    async fn the_gop_cache_is_bounded() {
        let streams = Streams::new(16, 20);
        let slot = streams.claim(&name()).expect("free");
        slot.verified(PublishOptions::default());
        slot.push(video(0, 0x17));
        for t in 1..10 {
            slot.push(video(t * 40, 0x27)); // 7 bytes each: the bound is passed at the third
        }
        let mut consumer = streams.subscribe(&name()).expect("live");
        slot.push(video(1000, 0x17));
        assert_eq!(
            consumer.next().await.map(|f| f.timestamp),
            Some(1000),
            "the overflowed GOP was not replayed"
        );
    }
}
