//! What ffmpeg does for a live stream: renditions (re-encoded, packaged by us) and previews.
//! ffmpeg reads the stream as FLV on its stdin (no stream key on any command line) and is
//! supervised: its stderr is logged, it is restarted with a backoff if it dies while the stream
//! lives, and it is stopped cleanly when the stream ends.

mod flv;
mod jobs;
mod supervisor;

pub use jobs::{PreviewReport, make_previews, make_thumbnail, package_rendition};
pub use supervisor::FfmpegConfig;
