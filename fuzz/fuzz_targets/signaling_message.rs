//! Arbitrary bytes as a Camus client's signaling message. Must never panic; a message that
//! reads writes out as text that reads back to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| camus_signaling::message::fuzz_envelope(data));
