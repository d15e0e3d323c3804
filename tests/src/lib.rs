//! The shared end-to-end test harness of the workspace.
//!
//! Every cross-crate test talks to real servers and real third-party peers, through these helpers:
//!
//! ```text
//!  process   servers under test: in-process on 127.0.0.1:0 (LocalServer) or child processes
//!            that announce `listening <name> <addr>` (ServerProcess); readiness is an event
//!  http      serve an axum router on 127.0.0.1:0; a reqwest client with rustls/ring
//!  ffmpeg    publish a generated test signal over RTMP; generate media files; ffprobe
//!  node      scripts of tests/js/ over a JSON-lines protocol: socket.io-client 4.8, ws
//!  browser   headless Chromium through playwright-core, fake camera/mic, screenshots on failure
//!  postgres  a fresh schema per test, dropped afterwards
//!  redis     a fresh key prefix per test, deleted afterwards
//!  peers     skip-or-fail policy: a missing peer skips, unless REQUIRE_PEERS=1
//! ```
//!
//! A test asks for each peer through [`peer`], which returns `None` (after printing why) when the
//! peer is missing and `REQUIRE_PEERS` is not set:
//!
//! ```no_run
//! use harness::{Ffmpeg, TestSignal, peer};
//! use std::time::Duration;
//!
//! # async fn example() -> harness::Result<()> {
//! let Some(ffmpeg) = peer(Ffmpeg::locate()) else { return Ok(()) };
//! let publisher = ffmpeg.publish("rtmp://127.0.0.1:1935/live/key", &TestSignal::lasting(Duration::from_secs(3)))?;
//! publisher.finish(Duration::from_secs(30)).await?;
//! # Ok(())
//! # }
//! ```

mod browser;
mod child;
mod error;
mod ffmpeg;
pub mod http;
mod node;
mod peers;
mod postgres;
mod process;
mod redis;

pub use browser::{Browser, Chromium, Page};
pub use error::{HarnessError, PeerMissing, Result};
pub use ffmpeg::{Ffmpeg, FfmpegRun, Probe, ProbeStream, TestSignal};
pub use node::{
    EVENT_TIMEOUT, Node, NodeScript, SocketIoClient, WsClient, WsRefusal, binary, decode_binary,
};
pub use peers::{peer, peers_required};
pub use postgres::PgSchema;
pub use process::{
    LocalServer, ProcessUsage, READY_TIMEOUT, ServerProcess, free_port, usage,
    wait_for_tcp_listener,
};
pub use redis::RedisPrefix;
