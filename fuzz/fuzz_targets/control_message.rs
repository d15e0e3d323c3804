//! Arbitrary text through the coordinator's control-message parser and its typed layer, for
//! every kind of link. Must never panic; and a message written back out parses to itself.
#![no_main]

use coordinator_core::proto::{ControlMessage, Inbound, LinkRole};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(message) = ControlMessage::parse(text) else { return };
    for role in [LinkRole::RtmpServer, LinkRole::WsServer, LinkRole::Encoder] {
        let _ = Inbound::parse(role, &message, 128);
    }
    let written = message.to_text();
    assert_eq!(ControlMessage::parse(&written).as_ref(), Ok(&message), "{written:?}");
});
