//! HLS packaging in process: FLV → MPEG-TS segments, live/VOD/master playlists on disk.
//!
//! [`package_hls`] packages one stream and
//! [`IngestHandle::package_every_stream`](crate::IngestHandle::package_every_stream) every
//! accepted one; the [`Segmenter`] inside them is a sans-IO state machine of its own.

mod codec;
mod packager;
mod playlist;
mod segmenter;
mod service;
mod ts;

pub use codec::CodecError;
pub(crate) use packager::Packager;
pub use packager::{HlsOutput, HlsReport, SegmentProgress, package_hls};
pub use segmenter::{Segment, Segmenter};
pub use service::HlsFinished;
