//! The wire: what peers send (`{type, caller_id, content}`, plus `token` in a REGISTER) and
//! what the server writes back.

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::json;
use std::fmt;

/// The server's answer to a REGISTER: this plain string (not JSON), as the original's.
pub const REGISTERED: &str = "REGISTER";
/// The server's answer to the peer that asked for a session, once it is open: this plain
/// string (not JSON), as the original's.
pub const SESSION_OK: &str = "SESSION_OK";
/// Characters of an unknown `type` quoted back in the error.
const QUOTED_TYPE_CHARS: usize = 32;

/// A peer's message, read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// `{"type":"REGISTER","caller_id":<id>,"token":"<token>"}`: this connection is peer `peer`.
    Register {
        /// The id asked for (`caller_id`).
        peer: u32,
        /// The signaling token for it.
        token: String,
    },
    /// `{"type":"SESSION","caller_id":<id>,"content":<partner id>}`: pair with `partner`.
    Session {
        /// `caller_id`, when given.
        caller_id: Option<u32>,
        /// `content`: the partner's peer id.
        partner: u32,
    },
    /// `{"type":"SDP", …}`: a session description, relayed verbatim to the session partner.
    Sdp {
        /// `caller_id`, when given.
        caller_id: Option<u32>,
    },
    /// `{"type":"ICE", …}`: an ICE candidate, relayed verbatim to the session partner.
    Ice {
        /// `caller_id`, when given.
        caller_id: Option<u32>,
    },
}

impl Message {
    /// Reads a peer's text frame of at most `limit` bytes.
    ///
    /// Peer ids (`caller_id`, and `content` in a SESSION) are JSON numbers or decimal strings
    /// from 0 to 4294967295; **0 is an id like any other**. Fields other than `type`,
    /// `caller_id`, `content` and `token` are allowed (and relayed with SDP and ICE); a field
    /// given twice is refused, so the server and the partner cannot read one message two ways.
    pub fn parse(text: &str, limit: usize) -> Result<Self, MessageError> {
        if text.len() > limit {
            return Err(MessageError::TooLarge {
                size: text.len(),
                limit,
            });
        }
        if !text.trim_start().starts_with('{') {
            // serde would read a JSON array as a struct's fields in order.
            return Err(match serde_json::from_str::<IgnoredAny>(text) {
                Ok(_) => MessageError::Malformed("expected a JSON object".into()),
                Err(error) => MessageError::MalformedJson(error.to_string()),
            });
        }
        let raw: Raw = serde_json::from_str(text).map_err(|error| match error.classify() {
            serde_json::error::Category::Data => MessageError::Malformed(error.to_string()),
            _ => MessageError::MalformedJson(error.to_string()),
        })?;
        let caller_id = match raw.caller_id {
            None => None,
            Some(IdField::Id(id)) => Some(id),
            Some(IdField::NotAnId) => {
                return Err(MessageError::Malformed(
                    "caller_id must be a peer id (0 to 4294967295)".into(),
                ));
            }
        };
        Ok(match raw.kind.as_str() {
            "REGISTER" => {
                let peer = caller_id.ok_or_else(|| {
                    MessageError::Malformed("REGISTER needs caller_id, the peer id".into())
                })?;
                let token = raw
                    .token
                    .ok_or_else(|| MessageError::Malformed("REGISTER needs a token".into()))?;
                Self::Register { peer, token }
            }
            "SESSION" => match raw.content {
                Some(IdField::Id(partner)) => Self::Session { caller_id, partner },
                _ => {
                    return Err(MessageError::Malformed(
                        "SESSION content must be the partner's peer id".into(),
                    ));
                }
            },
            "SDP" => Self::Sdp { caller_id },
            "ICE" => Self::Ice { caller_id },
            other => {
                return Err(MessageError::UnknownType(
                    other.chars().take(QUOTED_TYPE_CHARS).collect(),
                ));
            }
        })
    }

    /// Its `type` on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Register { .. } => "REGISTER",
            Self::Session { .. } => "SESSION",
            Self::Sdp { .. } => "SDP",
            Self::Ice { .. } => "ICE",
        }
    }
}

/// Why a peer's frame was not read as a message. Its text is the `content` of the ERROR reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// Longer than [`max_message_bytes`](crate::SignalingConfig::max_message_bytes).
    #[error("message too large: {size} bytes, the limit is {limit}")]
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not JSON (or binary that is not UTF-8).
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// JSON, but not a message of the protocol.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A `type` other than REGISTER, SESSION, SDP and ICE (its first 32 characters).
    #[error("unknown message type: {0}")]
    UnknownType(String),
}

impl MessageError {
    /// A short name, for metrics labels.
    pub fn label(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::MalformedJson(_) => "malformed_json",
            Self::Malformed(_) => "malformed",
            Self::UnknownType(_) => "unknown_type",
        }
    }
}

/// `{"type":"ERROR","content":"<why>"}`.
pub(crate) fn error_reply(why: &str) -> String {
    json!({ "type": "ERROR", "content": why }).to_string()
}

/// What the partner of a new session is told:
/// `{"type":"SESSION","caller_id":<who asked>,"content":<the partner's own id>}`.
pub(crate) fn session_notice(caller: u32, partner: u32) -> String {
    json!({ "type": "SESSION", "caller_id": caller, "content": partner }).to_string()
}

/// What a peer is told when its partner leaves:
/// `{"type":"SESSION_END","caller_id":<the partner>,"content":"<why>"}`.
pub(crate) fn session_end(partner: u32, why: &str) -> String {
    json!({ "type": "SESSION_END", "caller_id": partner, "content": why }).to_string()
}

/// The fields the server reads; the rest are skipped (and still relayed).
#[derive(serde::Deserialize)]
struct Raw {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    caller_id: Option<IdField>,
    #[serde(default)]
    content: Option<IdField>,
    #[serde(default)]
    token: Option<String>,
}

/// A field that may hold a peer id; anything else in it is skipped without being kept (an SDP
/// `content` is not copied just to be ignored).
enum IdField {
    Id(u32),
    NotAnId,
}

impl<'de> Deserialize<'de> for IdField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IdVisitor)
    }
}

struct IdVisitor;

impl<'de> Visitor<'de> for IdVisitor {
    type Value = IdField;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<IdField, E> {
        Ok(u32::try_from(v).map_or(IdField::NotAnId, IdField::Id))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<IdField, E> {
        Ok(u32::try_from(v).map_or(IdField::NotAnId, IdField::Id))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<IdField, E> {
        Ok(IdField::NotAnId)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<IdField, E> {
        let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
        Ok(match v.parse() {
            Ok(id) if digits => IdField::Id(id),
            _ => IdField::NotAnId,
        })
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<IdField, E> {
        Ok(IdField::NotAnId)
    }

    fn visit_unit<E: de::Error>(self) -> Result<IdField, E> {
        Ok(IdField::NotAnId)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IdField, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(IdField::NotAnId)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IdField, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(IdField::NotAnId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 1024;

    fn parse(text: &str) -> Result<Message, MessageError> {
        Message::parse(text, LIMIT)
    }

    #[test]
    fn the_four_types_are_read_with_id_zero_as_an_id() {
        assert_eq!(
            parse(r#"{"type":"REGISTER","caller_id":0,"token":"t"}"#),
            Ok(Message::Register {
                peer: 0,
                token: "t".into()
            })
        );
        assert_eq!(
            parse(r#"{"type":"SESSION","caller_id":"100","content":0}"#),
            Ok(Message::Session {
                caller_id: Some(100),
                partner: 0
            })
        );
        assert_eq!(
            parse(r#"{"type":"SESSION","content":"4294967295"}"#),
            Ok(Message::Session {
                caller_id: None,
                partner: u32::MAX
            })
        );
        assert_eq!(
            parse(r#"{"type":"SDP","caller_id":0,"content":{"type":"offer","sdp":"v=0"},"x":1}"#),
            Ok(Message::Sdp { caller_id: Some(0) })
        );
        assert_eq!(
            parse(r#" {"type":"ICE","content":[1,{"a":null}]}"#),
            Ok(Message::Ice { caller_id: None })
        );
    }

    #[test]
    fn bad_json_and_bad_messages_are_told_apart() {
        for text in ["", "{", "not json", "{\"type\":}", "{\"type\":\"SDP\"} x"] {
            assert!(
                matches!(parse(text), Err(MessageError::MalformedJson(_))),
                "{text:?}: {:?}",
                parse(text)
            );
        }
        for text in [
            "[\"REGISTER\",0,\"t\"]",
            "\"REGISTER\"",
            "17",
            "{}",
            r#"{"type":7}"#,
            r#"{"type":"SDP","caller_id":-1}"#,
            r#"{"type":"SDP","caller_id":4294967296}"#,
            r#"{"type":"SDP","caller_id":1.5}"#,
            r#"{"type":"SDP","caller_id":"+1"}"#,
            r#"{"type":"SDP","caller_id":""}"#,
            r#"{"type":"REGISTER","token":"t"}"#,
            r#"{"type":"REGISTER","caller_id":1}"#,
            r#"{"type":"REGISTER","caller_id":1,"token":5}"#,
            r#"{"type":"SESSION","caller_id":1}"#,
            r#"{"type":"SESSION","content":"zero"}"#,
            r#"{"type":"SDP","type":"ICE"}"#,
            r#"{"type":"SDP","caller_id":1,"caller_id":2}"#,
        ] {
            assert!(
                matches!(parse(text), Err(MessageError::Malformed(_))),
                "{text:?}: {:?}",
                parse(text)
            );
        }
    }

    #[test]
    fn unknown_types_are_named_briefly_and_sizes_are_bounded() {
        assert_eq!(
            parse(r#"{"type":"HELLO"}"#),
            Err(MessageError::UnknownType("HELLO".into()))
        );
        assert_eq!(
            parse(r#"{"type":"register","caller_id":0,"token":"t"}"#),
            Err(MessageError::UnknownType("register".into()))
        );
        let long = format!(r#"{{"type":"{}"}}"#, "X".repeat(500));
        assert_eq!(parse(&long), Err(MessageError::UnknownType("X".repeat(32))));
        let big = format!(r#"{{"type":"SDP","content":"{}"}}"#, "a".repeat(LIMIT));
        assert_eq!(
            parse(&big),
            Err(MessageError::TooLarge {
                size: big.len(),
                limit: LIMIT
            })
        );
    }

    #[test]
    fn replies_are_json_with_the_documented_shape() {
        let error: serde_json::Value =
            serde_json::from_str(&error_reply("no session \"quoted\"")).expect("JSON");
        assert_eq!(
            error,
            json!({ "type": "ERROR", "content": "no session \"quoted\"" })
        );
        let notice: serde_json::Value =
            serde_json::from_str(&session_notice(100, 0)).expect("JSON");
        assert_eq!(
            notice,
            json!({ "type": "SESSION", "caller_id": 100, "content": 0 })
        );
        let end: serde_json::Value = serde_json::from_str(&session_end(0, "left")).expect("JSON");
        assert_eq!(
            end,
            json!({ "type": "SESSION_END", "caller_id": 0, "content": "left" })
        );
    }
}
