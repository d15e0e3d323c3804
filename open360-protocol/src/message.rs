//! The `api-message` every Open360 service sends through the hub, and its package.
//!
//! ```text
//! { target: "web-api", ack: "ingest-api", type: "question" | "message" | 1 | 0,
//!   package: { prompt: "checkKeyExists", data: {...}, message: "Checking Stream Key" },
//!   requestId: "…" }                      ← ours, optional, echoed on the reply
//! ```
//!
//! Fields this version does not know are kept and written back unchanged, so a hub or a
//! service passes along what newer peers add.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Whether a message expects a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// One-way (`"message"`, or `0` from the original's services).
    Message,
    /// Expects a reply with the prompt `<prompt>-reply` (`"question"`, or `1`).
    Question,
}

impl MessageType {
    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Question => "question",
        }
    }
}

impl Serialize for MessageType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for MessageType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(word) if word == "message" => Ok(Self::Message),
            Value::String(word) if word == "question" => Ok(Self::Question),
            Value::Number(n) if n.as_u64() == Some(0) => Ok(Self::Message),
            Value::Number(n) if n.as_u64() == Some(1) => Ok(Self::Question),
            other => Err(serde::de::Error::custom(format!(
                "type must be \"message\", \"question\", 0 or 1, not {other}"
            ))),
        }
    }
}

/// What a message carries: a normal package (`prompt`, `data`, `message`) or the status
/// package (`prompt: "status"` alone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Package {
    /// How the target handles it (`checkKeyExists`, `status`, `setOnline`, …); a reply's is
    /// `<prompt>-reply`.
    pub prompt: String,
    /// The data, whatever the prompt needs; absent is `null`.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
    /// A short text the hub logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Fields this version does not know (a status reply's `status`, an error reply's `error`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Package {
    /// A normal package.
    pub fn new(prompt: impl Into<String>, data: Value) -> Self {
        Self {
            prompt: prompt.into(),
            data,
            ..Self::default()
        }
    }

    /// The status package.
    pub fn status() -> Self {
        Self::new(STATUS, Value::Null)
    }

    /// Whether this asks for the target's status.
    pub fn is_status(&self) -> bool {
        self.prompt == STATUS
    }
}

/// The status prompt.
pub const STATUS: &str = "status";

/// The suffix of a reply's prompt.
pub const REPLY_SUFFIX: &str = "-reply";

/// One message between services.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiMessage {
    /// The service it is for: the hub relays it as the event of this name.
    pub target: String,
    /// The service a reply goes to (the sender's label).
    #[serde(default)]
    pub ack: String,
    /// Whether a reply is expected.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// What it carries.
    #[serde(default)]
    pub package: Package,
    /// Ours: a question's id, echoed on its reply so replies find their question. Legacy
    /// peers send none; their replies are matched by prompt.
    #[serde(rename = "requestId", default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Fields this version does not know, relayed unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ApiMessage {
    /// A question from `from` to `target`.
    pub fn question(from: &str, target: &str, package: Package) -> Self {
        Self::new(from, target, MessageType::Question, package)
    }

    /// A one-way message from `from` to `target`.
    pub fn message(from: &str, target: &str, package: Package) -> Self {
        Self::new(from, target, MessageType::Message, package)
    }

    fn new(from: &str, target: &str, kind: MessageType, package: Package) -> Self {
        Self {
            target: target.to_owned(),
            ack: from.to_owned(),
            kind,
            package,
            request_id: None,
            extra: Map::new(),
        }
    }

    /// The reply to this message, from its target back to its `ack`, with the prompt
    /// `<prompt>-reply` and the question's request id.
    pub fn reply(&self, data: Value) -> Self {
        let mut package = Package::new(format!("{}{REPLY_SUFFIX}", self.package.prompt), data);
        package.message = Some("Ok".to_owned());
        Self {
            target: self.ack.clone(),
            ack: self.target.clone(),
            kind: MessageType::Message,
            package,
            request_id: self.request_id.clone(),
            extra: Map::new(),
        }
    }

    /// The reply to a status question: the word (`alive`, or what is wrong) both as
    /// `package.status` and as `package.data`.
    pub fn status_reply(&self, word: &str) -> Self {
        let mut reply = self.reply(Value::from(word));
        reply
            .package
            .extra
            .insert("status".to_owned(), Value::from(word));
        reply
    }

    /// A reply saying the question could not be answered, with `error` in `package.error`.
    pub fn error_reply(&self, error: &str) -> Self {
        let mut reply = self.reply(Value::Null);
        reply.package.message = Some(error.to_owned());
        reply
            .package
            .extra
            .insert("error".to_owned(), Value::from(error));
        reply
    }

    /// The hub's reply to a question for a service with no connected socket: an error reply,
    /// marked `package.absent = true`.
    pub fn absent_reply(&self) -> Self {
        let mut reply = self.error_reply(&format!("no service {} is connected", self.target));
        reply
            .package
            .extra
            .insert("absent".to_owned(), Value::Bool(true));
        reply
    }

    /// Whether this is the hub's reply for an absent service.
    pub fn is_absent_reply(&self) -> bool {
        self.package.extra.get("absent") == Some(&Value::Bool(true))
    }

    /// The error of an error reply.
    pub fn error(&self) -> Option<&str> {
        self.package.extra.get("error").and_then(Value::as_str)
    }

    /// Whether this is a reply (its prompt ends in `-reply`).
    pub fn is_reply(&self) -> bool {
        self.package.prompt.ends_with(REPLY_SUFFIX)
    }

    /// The prompt this replies to, if it is a reply.
    pub fn replies_to(&self) -> Option<&str> {
        self.package.prompt.strip_suffix(REPLY_SUFFIX)
    }
}

/// Decodes arbitrary bytes as an `api-message`; what the fuzz target runs. One that decodes
/// must encode to JSON that decodes to the same message.
#[cfg(feature = "fuzzing")]
pub fn fuzz_api_message(data: &[u8]) {
    if let Ok(message) = serde_json::from_slice::<ApiMessage>(data) {
        let written = serde_json::to_vec(&message).expect("a message always serializes");
        let again: ApiMessage = serde_json::from_slice(&written).expect("what we write reads back");
        assert_eq!(again, message);
    }
}

#[cfg(test)]
mod wire {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_seeds_question_and_reply_read() {
        let question: ApiMessage = serde_json::from_value(json!({
            "target": "web-api",
            "ack": "ingest-api",
            "type": "question",
            "package": {
                "prompt": "checkKeyExists",
                "data": { "streamKey": "abc" },
                "message": "Checking Stream Key"
            }
        }))
        .expect("the seed's question");
        assert_eq!(question.kind, MessageType::Question);
        assert_eq!(question.package.data["streamKey"], "abc");
        let reply = question.reply(json!({ "exists": true }));
        assert_eq!(
            serde_json::to_value(&reply).expect("written"),
            json!({
                "target": "ingest-api",
                "ack": "web-api",
                "type": "message",
                "package": { "prompt": "checkKeyExists-reply", "data": { "exists": true }, "message": "Ok" }
            })
        );
        assert_eq!(reply.replies_to(), Some("checkKeyExists"));
    }

    #[test]
    fn type_is_a_word_or_a_number_and_nothing_else() {
        for (raw, kind) in [
            (json!("message"), MessageType::Message),
            (json!(0), MessageType::Message),
            (json!("question"), MessageType::Question),
            (json!(1), MessageType::Question),
        ] {
            let message: ApiMessage =
                serde_json::from_value(json!({ "target": "chat-api", "type": raw })).expect("read");
            assert_eq!(message.kind, kind);
            assert_eq!(message.package, Package::default());
        }
        for raw in [
            json!("Question"),
            json!(2),
            json!(-1),
            json!(1.5),
            json!(null),
        ] {
            let read = serde_json::from_value::<ApiMessage>(json!({ "target": "x", "type": raw }));
            assert!(read.is_err(), "{raw} accepted");
        }
    }

    #[test]
    fn unknown_fields_and_the_request_id_travel_unchanged() {
        let raw = json!({
            "target": "web-api",
            "ack": "web-external-api",
            "type": 1,
            "requestId": "r-7",
            "trace": { "hop": 1 },
            "package": { "prompt": "status", "colour": "#fff" }
        });
        let message: ApiMessage = serde_json::from_value(raw).expect("read");
        assert!(message.package.is_status());
        assert_eq!(message.extra["trace"], json!({ "hop": 1 }));
        let written = serde_json::to_value(&message).expect("written");
        assert_eq!(written["type"], "question");
        assert_eq!(written["trace"], json!({ "hop": 1 }));
        assert_eq!(written["package"]["colour"], "#fff");
        let reply = message.status_reply("alive");
        assert_eq!(reply.request_id.as_deref(), Some("r-7"));
        assert_eq!(reply.package.data, "alive");
        assert_eq!(reply.package.extra["status"], "alive");
        let failed = message.error_reply("no service web-api is connected");
        assert_eq!(failed.error(), Some("no service web-api is connected"));
    }

    /// serde_json's `float_roundtrip`: a number in `data` is relayed exactly (the signaling
    /// fuzzer found drift in the last digits without it).
    #[test]
    fn numbers_in_data_come_back_exactly() {
        let text = r#"{"target":"web-api","type":"message","package":{"prompt":"p","data":{"e":1111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111110807959423}}}"#;
        let message: ApiMessage = serde_json::from_str(text).expect("read");
        let again: ApiMessage =
            serde_json::from_str(&serde_json::to_string(&message).expect("written")).expect("read");
        assert_eq!(again, message);
    }

    #[test]
    fn what_is_not_a_message_is_an_error() {
        for raw in [
            json!({ "ack": "x", "type": "message" }),
            json!({ "target": 7, "type": "message" }),
            json!({ "target": "x" }),
            json!({ "target": "x", "type": "message", "package": { "data": 1 } }),
            json!([1, 2]),
        ] {
            assert!(
                serde_json::from_value::<ApiMessage>(raw.clone()).is_err(),
                "{raw}"
            );
        }
    }
}

#[cfg(test)]
mod round_trip {
    use super::*;
    use proptest::prelude::*;

    fn json_leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ]
    }

    fn json() -> impl Strategy<Value = Value> {
        json_leaf().prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    prop_compose! {
        fn message()(
            target in ".{0,16}",
            ack in ".{0,16}",
            question in any::<bool>(),
            prompt in ".{0,16}",
            data in json(),
            text in proptest::option::of(".{0,16}"),
            request_id in proptest::option::of("[a-z0-9-]{1,12}"),
        ) -> ApiMessage {
            let mut package = Package::new(prompt, data);
            package.message = text;
            let mut message = if question {
                ApiMessage::question(&ack, &target, package)
            } else {
                ApiMessage::message(&ack, &target, package)
            };
            message.request_id = request_id;
            message
        }
    }

    proptest! {
        #[test]
        fn a_message_reads_back_as_written(message in message()) {
            let written = serde_json::to_string(&message).expect("written");
            let read: ApiMessage = serde_json::from_str(&written).expect("read");
            prop_assert_eq!(read, message);
        }
    }
}
