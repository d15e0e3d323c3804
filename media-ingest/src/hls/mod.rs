//! HLS packaging in process: FLV → MPEG-TS segments, live/VOD/master playlists on disk.

mod codec;
mod packager;
mod playlist;
mod segmenter;
mod ts;

pub use packager::{HlsOutput, HlsReport, package_hls};
