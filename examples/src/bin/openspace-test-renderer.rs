//! `openspace-test-renderer`: stands in for an OpenSpace instance under the supervisor's
//! `ProcessLauncher`; see [`examples::openspace_renderer`] for what it does.
//!
//! ```text
//! openspace-supervisor --instance-command "openspace-test-renderer --api-port {api_port} \
//!     --webrtc-id {webrtc_id} --width {width} --height {height} \
//!     --signaling-url {signaling_url} --token {token}"
//! ```

use clap::Parser;
use examples::{openspace_renderer, ops};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args = openspace_renderer::Args::parse();
    // rtc_dtls warns of every extension of Chromium's ClientHello that it does not know.
    ops::init_tracing_with_default(args.log_format, "info,rtc_dtls=error");
    ops::exit_code(
        "openspace-test-renderer",
        openspace_renderer::run(args).await,
    )
}
