//! Arbitrary bytes as a message between Castaway's cluster nodes (what a node reads from its
//! Redis channel). Must never panic; a message that decodes encodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| castaway_relay::fuzz_cluster_message(data));
