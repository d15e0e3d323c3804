//! Arbitrary bytes as a command to the OpenSpace supervisor. Must never panic; every request
//! gets a JSON object reply with an `error`, and the slots stay within their capacity.
#![no_main]

use libfuzzer_sys::fuzz_target;
use openspace_supervisor::slots::Slots;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut slots = Slots::new(3, Duration::from_secs(120), Duration::from_secs(10));
    let now = Instant::now();
    // The same text twice (a START fills a slot, a second may find it taken), with and without
    // a secret.
    for secret in [None, Some("a shared secret, long enough")] {
        for _ in 0..2 {
            let handled = openspace_supervisor::protocol::handle(&mut slots, &text, secret, now);
            assert!(handled.reply.get("error").is_some(), "{}", handled.reply);
            let (busy, total) = slots.server_status();
            assert!(busy <= total && total == 3);
        }
    }
});
