//! Arbitrary bytes from a client, through media-ingest's whole RTMP connection loop: handshake,
//! framing guard, rml_rtmp session, publish and play handling. The loop must end (the client
//! closes after its bytes) and no panic may escape it.
//!
//! rml_rtmp panics on some malformed input (its AMF0 decoder, for one); the server contains
//! those panics to the connection by design (`media_ingest_parser_panics_total`). So this target
//! replaces libfuzzer-sys's aborting panic hook with a quiet one: a contained panic is no
//! finding, while one that escapes the loop still aborts in libfuzzer-sys's wrapper, a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Once;

static QUIET_PANICS: Once = Once::new();

fuzz_target!(|input: &[u8]| {
    QUIET_PANICS.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let Ok(runtime) = runtime else { return };
    runtime.block_on(media_ingest::fuzz_connection(input));
});
