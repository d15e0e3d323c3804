//! Arbitrary bytes from a "server" through media-ingest's RTMP pull client (handshake done,
//! then framing guard, rml_rtmp client session, play handling). No panic may escape it;
//! rml_rtmp's own panics are contained by the session and are no finding (see
//! rtmp_connection.rs for the quiet panic hook).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Once;

static QUIET_PANICS: Once = Once::new();

fuzz_target!(|input: &[u8]| {
    QUIET_PANICS.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    media_ingest::fuzz_pull_session(input);
});
