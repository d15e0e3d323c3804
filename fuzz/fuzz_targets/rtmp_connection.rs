//! Arbitrary bytes from a client, through media-ingest's whole RTMP connection loop: handshake,
//! framing guard, rml_rtmp session, publish and play handling. The loop must end (the client
//! closes after its bytes) without a panic escaping it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let Ok(runtime) = runtime else { return };
    runtime.block_on(media_ingest::fuzz_connection(input));
});
