//! Arbitrary text as a message to the OpenSpace signaling server. Must never panic; a message
//! that parses is within the size limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openspace_supervisor::signaling::Message;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if Message::parse(&text, 4096).is_ok() {
        assert!(text.len() <= 4096);
    }
});
