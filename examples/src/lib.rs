//! Thin, runnable servers for each system of the workspace, and `demo`: every system in one
//! process. The binaries parse flags and environment variables, build a library's server, serve,
//! and shut down gracefully; what they share lives here:
//!
//! - [`ops`]: logging, Prometheus `/metrics`, `/healthz`, the shutdown signal, and the
//!   `listening <name> <addr>` line each binary prints once a socket is bound (the test harness
//!   waits on it instead of sleeping).
//! - [`landing`]: the catalogue of systems and the demo's landing page.

pub mod castaway_demo;
pub mod coordinator_demo;
pub mod landing;
pub mod open360_demo;
pub mod openspace_demo;
pub mod openspace_renderer;
pub mod ops;
