//! The signaling messages of the seed's protocol: `{sender, receiver, type, data}` over the
//! room's WebSocket.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The server's address.
pub const GROUND_CONTROL: &str = "ground control";
/// Everyone in the room, the sender included.
pub const ROOM: &str = "room";

/// One message, as it travels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Who sent it. The server overwrites it with the socket's client id.
    #[serde(default)]
    pub sender: String,
    /// `ground control`, `room`, or a client id of the same room.
    #[serde(default)]
    pub receiver: String,
    /// What it is (`ping`, `offer`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its payload; absent is `null`.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
}

/// Where a message is addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver<'a> {
    /// The server.
    GroundControl,
    /// Everyone in the room.
    Room,
    /// One client, by id.
    Client(&'a str),
}

/// The message types the server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Answered with `pong`, the same data.
    Ping,
    /// A ping's answer.
    Pong,
    /// Chat text for other clients.
    Text,
    /// Answered with `room-info`.
    GetRoomInfo,
    /// The room and its clients.
    RoomInfo,
    /// A client's name.
    Profile,
    /// Answered with `ice-servers`.
    GetIceServers,
    /// STUN and TURN servers.
    IceServers,
    /// WebRTC session description (offer).
    Offer,
    /// WebRTC session description (answer).
    Answer,
    /// A trickled ICE candidate.
    IceCandidate,
    /// The server's greeting once the socket opens.
    Greeting,
    /// A client leaving.
    Bye,
    /// An error, from the server.
    Error,
}

impl Kind {
    /// The type's name on the wire, for the known ones.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "ping" => Self::Ping,
            "pong" => Self::Pong,
            "text" => Self::Text,
            "get-room-info" => Self::GetRoomInfo,
            "room-info" => Self::RoomInfo,
            "profile" => Self::Profile,
            "get-ice-servers" => Self::GetIceServers,
            "ice-servers" => Self::IceServers,
            "offer" => Self::Offer,
            "answer" => Self::Answer,
            "icecandidate" => Self::IceCandidate,
            "greeting" => Self::Greeting,
            "bye" => Self::Bye,
            "error" => Self::Error,
            _ => return None,
        })
    }
}

/// Why a client's message was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Larger than the limit.
    #[error("message of {size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not a message of the protocol.
    #[error("malformed message: {0}")]
    Malformed(String),
}

impl Envelope {
    /// Reads a client's text frame, at most `limit` bytes.
    pub fn parse(text: &str, limit: usize) -> Result<Self, MessageError> {
        if text.len() > limit {
            return Err(MessageError::TooLarge {
                size: text.len(),
                limit,
            });
        }
        serde_json::from_str(text).map_err(|e| MessageError::Malformed(e.to_string()))
    }

    /// A message from the server.
    pub fn from_server(receiver: &str, kind: &str, data: Value) -> Self {
        Self {
            sender: GROUND_CONTROL.to_owned(),
            receiver: receiver.to_owned(),
            kind: kind.to_owned(),
            data,
        }
    }

    /// The server's `error` to `receiver`.
    pub fn error(receiver: &str, text: &str) -> Self {
        Self::from_server(receiver, "error", Value::from(text))
    }

    /// Where it is addressed.
    pub fn receiver(&self) -> Receiver<'_> {
        match self.receiver.as_str() {
            GROUND_CONTROL => Receiver::GroundControl,
            ROOM => Receiver::Room,
            client => Receiver::Client(client),
        }
    }

    /// Its type, if the server knows it.
    pub fn known_kind(&self) -> Option<Kind> {
        Kind::parse(&self.kind)
    }

    /// The JSON text to send.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Reads arbitrary bytes as a client's message; what the fuzz target runs. One that reads
/// must write out as text that reads back to the same message.
#[cfg(feature = "fuzzing")]
pub fn fuzz_envelope(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(message) = Envelope::parse(text, 64 << 10) {
        let _ = message.receiver();
        let _ = message.known_kind();
        let again = Envelope::parse(&message.to_text(), usize::MAX);
        assert_eq!(again.as_ref(), Ok(&message));
    }
}

#[cfg(test)]
mod wire {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_seeds_messages_read_and_write_back() {
        let seeds = [
            json!({ "sender": "ground control", "receiver": "d86f", "type": "ping", "data": 1615918847680_u64 }),
            json!({ "sender": "f881", "receiver": "d86f", "type": "text",
                    "data": { "from": "Ted", "time": 1615918847680_u64, "text": "dust in the wind" } }),
            json!({ "sender": "d86f", "receiver": "ground control", "type": "get-room-info" }),
            json!({ "sender": "d86f", "receiver": "ground control", "type": "profile", "data": { "username": "Bill" } }),
        ];
        for seed in seeds {
            let message = Envelope::parse(&seed.to_string(), 64 << 10).expect("reads");
            assert!(message.known_kind().is_some(), "{seed}");
            let written: Value = serde_json::from_str(&message.to_text()).expect("JSON");
            assert_eq!(written, seed);
        }
    }

    #[test]
    fn receivers_and_kinds_are_classified() {
        let to = |receiver: &str| Envelope {
            sender: String::new(),
            receiver: receiver.into(),
            kind: "offer".into(),
            data: Value::Null,
        };
        assert_eq!(to("ground control").receiver(), Receiver::GroundControl);
        assert_eq!(to("room").receiver(), Receiver::Room);
        assert_eq!(to("abc").receiver(), Receiver::Client("abc"));
        assert_eq!(to("abc").known_kind(), Some(Kind::Offer));
        for name in [
            "icecandidate",
            "greeting",
            "bye",
            "ice-servers",
            "room-info",
            "pong",
            "answer",
            "error",
            "get-ice-servers",
        ] {
            assert!(Kind::parse(name).is_some(), "{name}");
        }
        assert_eq!(Kind::parse("ICECANDIDATE"), None);
        assert_eq!(
            Envelope::error("abc", "Unknown message type: x").to_text(),
            r#"{"sender":"ground control","receiver":"abc","type":"error","data":"Unknown message type: x"}"#
        );
    }

    /// Found by the fuzzer (`fuzz/regressions/signaling_message`): a number in `data` must
    /// come out as it went in (serde_json's `float_roundtrip`).
    #[test]
    fn numbers_in_data_are_relayed_exactly() {
        let text = r#"{"seddr":"f88","type":"text","data":{"e":1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111110807959423,"tmx":"dustust"}}"#;
        let message = Envelope::parse(text, 64 << 10).expect("reads");
        let again = Envelope::parse(&message.to_text(), 64 << 10).expect("reads back");
        assert_eq!(again, message);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(
            Envelope::parse(&"x".repeat(11), 10),
            Err(MessageError::TooLarge {
                size: 11,
                limit: 10
            })
        );
        for text in [
            "",
            "{",
            "[]",
            "{\"receiver\":\"room\"}",
            "{\"type\":7}",
            "null",
        ] {
            assert!(
                matches!(Envelope::parse(text, 1024), Err(MessageError::Malformed(_))),
                "{text}"
            );
        }
    }
}
