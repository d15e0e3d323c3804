//! Arbitrary bytes as an Open360 `api-message` (what the hub and every service decode). Must
//! never panic; a message that decodes is written back out and decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| open360_protocol::message::fuzz_api_message(data));
