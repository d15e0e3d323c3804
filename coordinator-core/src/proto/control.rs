//! The control messages, typed: what streaming servers and encoders send, what the coordinator
//! answers, and the `ERROR` a malformed message gets (DECISIONS.md: the link stays open).

use super::message::ControlMessage;
use std::fmt;

/// The kind of peer at the other end of a link: `/ws/control/{rtmp|wss|hls}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkRole {
    /// An RTMP streaming server (`rtmp`).
    RtmpServer,
    /// A WebSocket streaming server (`wss`).
    WsServer,
    /// An HLS encoder (`hls`).
    Encoder,
}

impl LinkRole {
    /// The role of a control path's last segment.
    pub fn from_path(segment: &str) -> Option<Self> {
        match segment {
            "rtmp" => Some(Self::RtmpServer),
            "wss" => Some(Self::WsServer),
            "hls" => Some(Self::Encoder),
            _ => None,
        }
    }

    /// The `sub` its JWT must carry.
    pub fn subject(&self) -> &'static str {
        match self {
            Self::RtmpServer => "rtmp-control",
            Self::WsServer => "wss-control",
            Self::Encoder => "hls-control",
        }
    }

    fn is_server(&self) -> bool {
        !matches!(self, Self::Encoder)
    }
}

/// An encoder's capacity: `Capacity` 0 or negative means unlimited (the documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capacity {
    /// Any number of streams.
    Unlimited,
    /// At most this many streams at once.
    Limited(u32),
}

/// What a streaming server or an encoder sends the coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Inbound {
    /// Liveness, every 20 s.
    Heartbeat,
    /// A server asks whether a publisher may publish `key` on `channel`.
    PublishRequest {
        /// Correlates the answer.
        request_id: String,
        /// The channel.
        channel: String,
        /// The stream key.
        key: String,
        /// The publisher's address.
        user_ip: String,
    },
    /// A server's publisher has stopped.
    PublishEnd {
        /// The channel.
        channel: String,
        /// The stream that ended.
        stream_id: String,
    },
    /// An encoder announces its capacity.
    Register {
        /// How many streams it takes.
        capacity: Capacity,
    },
    /// An encoder has made a stream available.
    StreamAvailable {
        /// The channel.
        channel: String,
        /// The stream.
        stream_id: String,
        /// `HLS-LIVE`, `HLS-VOD` or `IMG-PREVIEW`.
        stream_type: String,
        /// `WxH-FPS`.
        resolution: String,
        /// The index file in the shared file system.
        index_file: String,
        /// When the stream started, if given.
        start_time: Option<String>,
    },
    /// An encoder has closed a stream.
    StreamClosed {
        /// The channel.
        channel: String,
        /// The stream.
        stream_id: String,
    },
}

/// Which streams of a channel a `STREAM-KILL` closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamSelector {
    /// One stream.
    Id(String),
    /// Every stream of the channel (`*`).
    All,
}

/// Where an encoder pulls a stream from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceType {
    /// An RTMP streaming server.
    Rtmp,
    /// A WebSocket streaming server.
    Ws,
}

/// What the coordinator sends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outbound {
    /// Liveness, every 20 s.
    Heartbeat,
    /// The publisher may publish, as stream `stream_id`.
    PublishAccept {
        /// From the request.
        request_id: String,
        /// The new stream's id.
        stream_id: String,
    },
    /// The publisher may not publish.
    PublishDeny {
        /// From the request.
        request_id: String,
    },
    /// Close streams of a channel.
    StreamKill {
        /// The channel.
        channel: String,
        /// Which streams.
        stream: StreamSelector,
    },
    /// An encoder is to pull and encode a stream.
    EncodeStart {
        /// The channel.
        channel: String,
        /// The stream.
        stream_id: String,
        /// Where from.
        source_type: SourceType,
        /// `rtmp://ip:port/<channel>/<key>`.
        source_uri: String,
        /// `WxH-FPS~KBPS` list or `ORIGINAL`.
        resolutions: String,
        /// Whether to keep a VOD.
        record: bool,
        /// `WxH,SEC` or `False`.
        previews: String,
    },
    /// An encoder is to stop a stream.
    EncodeStop {
        /// The channel.
        channel: String,
        /// The stream.
        stream_id: String,
    },
    /// The last message could not be used; the link stays open.
    Error {
        /// What kind of error.
        code: ErrorCode,
        /// Details for a person.
        message: String,
    },
}

/// The `Error-Code` of an `ERROR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The text is not a control message.
    InvalidMessage,
    /// No such method.
    UnknownMethod,
    /// A method the other kind of peer sends (or only the coordinator sends).
    WrongRole,
    /// A required header is missing.
    MissingField,
    /// A header's value is invalid (a channel or key outside `[A-Za-z0-9_-]`, too long …).
    InvalidField,
    /// The message refers to a stream that is not this peer's.
    NotYours,
}

impl ErrorCode {
    /// As it goes on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InvalidMessage => "INVALID_MESSAGE",
            Self::UnknownMethod => "UNKNOWN_METHOD",
            Self::WrongRole => "WRONG_ROLE",
            Self::MissingField => "MISSING_FIELD",
            Self::InvalidField => "INVALID_FIELD",
            Self::NotYours => "NOT_YOURS",
        }
    }
}

/// Why an inbound message was refused: becomes an `ERROR` to its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    /// The code.
    pub code: ErrorCode,
    /// Details.
    pub detail: String,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)
    }
}

impl ProtocolError {
    fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }

    /// The `ERROR` message for this refusal.
    pub fn to_outbound(&self) -> Outbound {
        Outbound::Error {
            code: self.code,
            message: self.detail.clone(),
        }
    }
}

/// Whether `id` is a valid channel, key or stream id: `^[A-Za-z0-9_-]+$`, at most `max` long.
pub fn valid_id(id: &str, max: usize) -> bool {
    !id.is_empty()
        && id.len() <= max
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

const SERVER_METHODS: [&str; 2] = ["PUBLISH-REQUEST", "PUBLISH-END"];
const ENCODER_METHODS: [&str; 3] = ["REGISTER", "STREAM-AVAILABLE", "STREAM-CLOSED"];
const COORDINATOR_METHODS: [&str; 7] = [
    "PUBLISH-ACCEPT",
    "PUBLISH-DENY",
    "STREAM-KILL",
    "ENCODE-START",
    "ENCODE-STOP",
    "ERROR",
    "HEARTBEAT",
];

impl Inbound {
    /// Types a message from a peer of `role`; channels, keys and stream ids are checked against
    /// `id_max_length`.
    pub fn parse(
        role: LinkRole,
        message: &ControlMessage,
        id_max_length: usize,
    ) -> Result<Self, ProtocolError> {
        let method = message.method();
        if method == "HEARTBEAT" {
            return Ok(Self::Heartbeat);
        }
        let mine = if role.is_server() {
            &SERVER_METHODS[..]
        } else {
            &ENCODER_METHODS[..]
        };
        if !mine.contains(&method) {
            let known = SERVER_METHODS.contains(&method)
                || ENCODER_METHODS.contains(&method)
                || COORDINATOR_METHODS.contains(&method);
            return Err(if known {
                ProtocolError::new(
                    ErrorCode::WrongRole,
                    format!("{method} is not sent by a {} link", role.subject()),
                )
            } else {
                ProtocolError::new(ErrorCode::UnknownMethod, format!("unknown method {method}"))
            });
        }
        let field = |name: &'static str| {
            message
                .header(name)
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    ProtocolError::new(ErrorCode::MissingField, format!("{method} needs {name}"))
                })
        };
        let id = |name: &'static str| {
            let value = field(name)?;
            if valid_id(&value, id_max_length) {
                Ok(value)
            } else {
                Err(ProtocolError::new(
                    ErrorCode::InvalidField,
                    format!("{name} must match [A-Za-z0-9_-]{{1,{id_max_length}}}"),
                ))
            }
        };
        Ok(match method {
            "PUBLISH-REQUEST" => Self::PublishRequest {
                request_id: field("Request-ID")?,
                channel: id("Stream-Channel")?,
                key: id("Stream-Key")?,
                user_ip: field("User-IP")?,
            },
            "PUBLISH-END" => Self::PublishEnd {
                channel: id("Stream-Channel")?,
                stream_id: id("Stream-ID")?,
            },
            "REGISTER" => {
                let raw = field("Capacity")?;
                let value: i64 = raw.parse().map_err(|_| {
                    ProtocolError::new(
                        ErrorCode::InvalidField,
                        format!("Capacity {raw:?} is not a number"),
                    )
                })?;
                let capacity = match u32::try_from(value) {
                    Ok(0) | Err(_) if value <= 0 => Capacity::Unlimited,
                    Ok(limit) => Capacity::Limited(limit),
                    Err(_) => {
                        return Err(ProtocolError::new(
                            ErrorCode::InvalidField,
                            "Capacity is too large",
                        ));
                    }
                };
                Self::Register { capacity }
            }
            "STREAM-AVAILABLE" => Self::StreamAvailable {
                channel: id("Stream-Channel")?,
                stream_id: id("Stream-ID")?,
                stream_type: field("Stream-Type")?,
                resolution: field("Resolution")?,
                index_file: field("Index-file")?,
                start_time: message.header("Start-Time").map(str::to_owned),
            },
            _ => Self::StreamClosed {
                channel: id("Stream-Channel")?,
                stream_id: id("Stream-ID")?,
            },
        })
    }
}

impl Outbound {
    /// The message as it goes on the wire.
    pub fn to_message(&self) -> ControlMessage {
        match self {
            Self::Heartbeat => ControlMessage::new("HEARTBEAT"),
            Self::PublishAccept {
                request_id,
                stream_id,
            } => ControlMessage::new("PUBLISH-ACCEPT")
                .with("Request-ID", request_id)
                .with("Stream-ID", stream_id),
            Self::PublishDeny { request_id } => {
                ControlMessage::new("PUBLISH-DENY").with("Request-ID", request_id)
            }
            Self::StreamKill { channel, stream } => ControlMessage::new("STREAM-KILL")
                .with("Stream-Channel", channel)
                .with(
                    "Stream-ID",
                    match stream {
                        StreamSelector::Id(id) => id.as_str(),
                        StreamSelector::All => "*",
                    },
                ),
            Self::EncodeStart {
                channel,
                stream_id,
                source_type,
                source_uri,
                resolutions,
                record,
                previews,
            } => ControlMessage::new("ENCODE-START")
                .with("Stream-Channel", channel)
                .with("Stream-ID", stream_id)
                .with(
                    "Stream-Source-Type",
                    if *source_type == SourceType::Rtmp {
                        "RTMP"
                    } else {
                        "WS"
                    },
                )
                .with("Stream-Source-URI", source_uri)
                .with("Resolutions", resolutions)
                .with("Record", if *record { "True" } else { "False" })
                .with("Previews", previews),
            Self::EncodeStop { channel, stream_id } => ControlMessage::new("ENCODE-STOP")
                .with("Stream-Channel", channel)
                .with("Stream-ID", stream_id),
            Self::Error { code, message } => ControlMessage::new("ERROR")
                .with("Error-Code", code.as_str())
                .with("Error-Message", message),
        }
    }
}

/// Stream ids as the original makes them: the hex of an 8-byte millisecond time, a 4-byte
/// counter and 4 random bytes (32 hex digits). Time and randomness are passed in.
#[derive(Debug, Default)]
pub struct StreamIds {
    counter: u32,
}

impl StreamIds {
    /// The next id, at `now_ms` (Unix milliseconds) with `random` bits.
    pub fn next(&mut self, now_ms: u64, random: u32) -> String {
        self.counter = self.counter.wrapping_add(1);
        format!("{now_ms:016x}{:08x}{random:08x}", self.counter)
    }
}

#[cfg(test)]
mod tests_control {
    use super::*;

    fn parse(role: LinkRole, text: &str) -> Result<Inbound, ProtocolError> {
        Inbound::parse(role, &ControlMessage::parse(text).expect("a message"), 128)
    }

    #[test]
    fn a_publish_request_is_typed() {
        let request = parse(
            LinkRole::RtmpServer,
            "PUBLISH-REQUEST\nRequest-ID: 9\nStream-Channel: ch-1\nStream-Key: k_1\nUser-IP: ::ffff:10.0.0.1",
        );
        assert_eq!(
            request,
            Ok(Inbound::PublishRequest {
                request_id: "9".into(),
                channel: "ch-1".into(),
                key: "k_1".into(),
                user_ip: "::ffff:10.0.0.1".into()
            })
        );
    }

    #[test]
    fn each_role_sends_only_its_own_methods() {
        assert_eq!(
            parse(LinkRole::Encoder, "PUBLISH-REQUEST").map_err(|e| e.code),
            Err(ErrorCode::WrongRole)
        );
        assert_eq!(
            parse(LinkRole::WsServer, "REGISTER\nCapacity: 3").map_err(|e| e.code),
            Err(ErrorCode::WrongRole)
        );
        assert_eq!(
            parse(LinkRole::RtmpServer, "PUBLISH-ACCEPT").map_err(|e| e.code),
            Err(ErrorCode::WrongRole)
        );
        assert_eq!(
            parse(LinkRole::RtmpServer, "DANCE").map_err(|e| e.code),
            Err(ErrorCode::UnknownMethod)
        );
        assert_eq!(
            parse(LinkRole::Encoder, "HEARTBEAT"),
            Ok(Inbound::Heartbeat)
        );
    }

    #[test]
    fn fields_are_required_and_ids_checked() {
        let missing = parse(
            LinkRole::RtmpServer,
            "PUBLISH-REQUEST\nRequest-ID: 1\nStream-Channel: c\nUser-IP: x",
        )
        .expect_err("no key");
        assert_eq!(
            (missing.code, missing.detail.contains("Stream-Key")),
            (ErrorCode::MissingField, true)
        );
        for bad in ["a/b", "a b", "ä", ""] {
            let text = format!("PUBLISH-END\nStream-Channel: {bad}\nStream-ID: s");
            let code = parse(LinkRole::RtmpServer, &text).map_err(|e| e.code);
            assert!(
                matches!(code, Err(ErrorCode::InvalidField | ErrorCode::MissingField)),
                "{bad:?}: {code:?}"
            );
        }
        let long = format!(
            "PUBLISH-END\nStream-Channel: {}\nStream-ID: s",
            "a".repeat(129)
        );
        assert_eq!(
            parse(LinkRole::RtmpServer, &long).map_err(|e| e.code),
            Err(ErrorCode::InvalidField)
        );
    }

    #[test]
    fn capacity_zero_or_negative_is_unlimited() {
        let capacity =
            |value: &str| parse(LinkRole::Encoder, &format!("REGISTER\nCapacity: {value}"));
        assert_eq!(
            capacity("4"),
            Ok(Inbound::Register {
                capacity: Capacity::Limited(4)
            })
        );
        assert_eq!(
            capacity("0"),
            Ok(Inbound::Register {
                capacity: Capacity::Unlimited
            })
        );
        assert_eq!(
            capacity("-1"),
            Ok(Inbound::Register {
                capacity: Capacity::Unlimited
            })
        );
        assert_eq!(
            capacity("many").map_err(|e| e.code),
            Err(ErrorCode::InvalidField)
        );
        assert_eq!(
            capacity("99999999999").map_err(|e| e.code),
            Err(ErrorCode::InvalidField)
        );
    }

    #[test]
    fn outbound_messages_have_the_documented_headers() {
        let start = Outbound::EncodeStart {
            channel: "ch".into(),
            stream_id: "s1".into(),
            source_type: SourceType::Rtmp,
            source_uri: "rtmp://10.0.0.2:1935/ch/key".into(),
            resolutions: "1280x720-30~2500,ORIGINAL".into(),
            record: true,
            previews: "320x180,5".into(),
        }
        .to_message();
        assert_eq!(start.method(), "ENCODE-START");
        assert_eq!(start.header("stream-source-type"), Some("RTMP"));
        assert_eq!(start.header("Record"), Some("True"));
        let kill = Outbound::StreamKill {
            channel: "ch".into(),
            stream: StreamSelector::All,
        }
        .to_message();
        assert_eq!(
            kill.to_text(),
            "STREAM-KILL\nStream-Channel: ch\nStream-ID: *"
        );
        let error = ProtocolError::new(ErrorCode::UnknownMethod, "unknown method DANCE")
            .to_outbound()
            .to_message();
        assert_eq!(error.header("Error-Code"), Some("UNKNOWN_METHOD"));
    }

    #[test]
    fn stream_ids_are_time_counter_and_random_in_hex() {
        let mut ids = StreamIds::default();
        let first = ids.next(0x0000_0192_3456_789a, 0xdead_beef);
        assert_eq!(first, "00000192345678 9a00000001deadbeef".replace(' ', ""));
        assert_eq!(first.len(), 32);
        assert_ne!(
            ids.next(0x0000_0192_3456_789a, 0xdead_beef),
            first,
            "the counter separates ids of one millisecond"
        );
    }
}
