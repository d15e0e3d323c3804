//! The coordinator's peers, built on media-ingest: a streaming server that asks the
//! coordinator before accepting publishers, and an HLS encoder that takes streams from it.

mod encoder;
mod jobs;
mod streaming_server;
mod uplink;

pub use encoder::{Encoder, EncoderConfig};
pub use streaming_server::{ANSWER_TIMEOUT, CoordinatorVerifier};
pub use uplink::{Uplink, UplinkConfig, UplinkDown, UplinkEvent, control_token};
