//! Live streams fed in-process rather than by an RTMP publisher: a stream pulled from another
//! server (an RTMP pull), or made by the embedder, offered to the same
//! consumers as an ingested one (the HLS packager, renditions, previews).

use crate::{
    IngestConfig,
    media::MediaFrame,
    streams::{PublisherSlot, StreamName, Streams, Subscription},
    verify::PublishOptions,
};
use rml_rtmp::sessions::StreamMetadata;

/// A set of live streams with in-process publishers; cheap to clone.
#[derive(Clone)]
pub struct Relay {
    streams: Streams,
}

/// The publisher of one relayed stream; dropping it ends the stream for every consumer.
pub struct RelayPublisher {
    slot: PublisherSlot,
}

impl Default for Relay {
    /// The ring and GOP-cache bounds of [`IngestConfig::default`].
    fn default() -> Self {
        let config = IngestConfig::default();
        Self::new(config.stream_ring_frames, config.gop_cache_bytes)
    }
}

impl Relay {
    /// Streams whose consumers may fall `ring_frames` behind before they skip to a keyframe, and
    /// whose new consumers start from a GOP cache of at most `gop_cache_bytes`.
    pub fn new(ring_frames: usize, gop_cache_bytes: usize) -> Self {
        Self {
            streams: Streams::new(ring_frames.max(1), gop_cache_bytes),
        }
    }

    /// Starts publishing `name` with `options` (what consumers see as the verifier's decision);
    /// `None` if it is published already.
    pub fn publish(&self, name: &StreamName, options: PublishOptions) -> Option<RelayPublisher> {
        let slot = self.streams.claim(name)?;
        slot.verified(options);
        Some(RelayPublisher { slot })
    }

    /// Starts consuming `name`, if it is published.
    pub fn subscribe(&self, name: &StreamName) -> Option<Subscription> {
        self.streams.subscribe(name)
    }

    /// Names being published.
    pub fn live_streams(&self) -> Vec<StreamName> {
        self.streams.names()
    }
}

impl RelayPublisher {
    /// Hands a frame to every consumer; never waits.
    pub fn push(&self, frame: MediaFrame) {
        self.slot.push(frame);
    }

    /// The stream's metadata (`onMetaData`), for consumers that ask.
    pub fn set_metadata(&self, metadata: StreamMetadata) {
        self.slot.set_metadata(metadata);
    }
}

#[cfg(test)]
mod tests_relay {
    use super::*;
    use crate::MediaKind;
    use bytes::Bytes;

    #[tokio::test]
    async fn relayed_frames_reach_consumers_until_the_publisher_is_dropped() {
        let relay = Relay::default();
        let name = StreamName {
            app: "ch".into(),
            key: "stream".into(),
        };
        let publisher = relay
            .publish(&name, PublishOptions::default())
            .expect("free");
        assert!(relay.publish(&name, PublishOptions::default()).is_none());
        let mut consumer = relay.subscribe(&name).expect("published");
        let frame = MediaFrame {
            kind: MediaKind::Audio,
            timestamp: 40,
            data: Bytes::from_static(&[0xaf, 1, 2, 3]),
        };
        publisher.push(frame.clone());
        assert_eq!(consumer.next().await, Some(frame));
        drop(publisher);
        assert_eq!(consumer.next().await, None);
        assert!(relay.live_streams().is_empty());
        assert!(relay.publish(&name, PublishOptions::default()).is_some());
    }
}
