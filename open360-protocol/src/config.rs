use crate::ConfigError;
use std::{fmt, net::SocketAddr, time::Duration};

/// The internal API hub's settings.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubConfig {
    /// Where the hub's Socket.IO (and `GET /messages`) listens. Default `0.0.0.0:4000`.
    pub listen: SocketAddr,
    /// When set, a service must present this token to join. Default none (any service joins).
    pub token: Option<String>,
    /// Logged messages kept; older ones are deleted. Default 100,000.
    pub log_retention: usize,
    /// The largest `api-message` accepted, in bytes. Default 256 KiB.
    pub max_message_bytes: usize,
    /// Messages that may wait to be written to one service's socket; a service further behind
    /// loses messages (counted in `open360_hub_dropped_total`, logged); a question none of its
    /// sockets took is answered at once with an error. Default 65,536.
    pub max_queued_per_socket: usize,
}

impl fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("log_retention", &self.log_retention)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_queued_per_socket", &self.max_queued_per_socket)
            .finish()
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 4000)),
            token: None,
            log_retention: 100_000,
            max_message_bytes: 256 << 10,
            max_queued_per_socket: 65_536,
        }
    }
}

/// The external HTTP API's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExternalApiConfig {
    /// Where the API listens. Default `0.0.0.0:8080`.
    pub listen: SocketAddr,
    /// How long `GET /` waits for each service's `status` reply before calling it a zombie.
    /// Default 1 s (the original's fixed wait, now an upper bound).
    pub status_timeout: Duration,
}

impl Default for ExternalApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            status_timeout: Duration::from_secs(1),
        }
    }
}

/// The chat service's settings.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChatConfig {
    /// Where the chat's Socket.IO listens. Default `0.0.0.0:4002`.
    pub listen: SocketAddr,
    /// The room of a client that names none. Default `universal` (the original's).
    pub default_channel: String,
    /// The longest chat message, in characters. Default 500.
    pub max_message_chars: usize,
    /// Sustained messages per second per user. Default 2.
    pub messages_per_second: u32,
    /// Messages a user may send in a burst. Default 5.
    pub message_burst: u32,
    /// Rooms held at once. Default 10,000.
    pub max_rooms: usize,
    /// With a Redis URL (Redis 7 or later, standalone), every chat node sharing it is one room
    /// space: messages reach a room's viewers on every node (socketioxide's Redis adapter), and
    /// counts and members are the deployment's. Default none (one node, in memory).
    pub redis_url: Option<String>,
    /// What the chat's Redis keys and channels start with. Default `open360:chat:`.
    pub redis_prefix: String,
    /// How long a node's viewers count after the node last reached Redis: a node that dies is
    /// out of the counts this long after. Default 15 s.
    pub node_lease: Duration,
    /// The secret the web service signs chat tokens with (at least 16 characters). Set, a
    /// name must come with a token for it ([`crate::issue_chat_token`]); unset, names are
    /// taken as claimed (the original's behaviour), with a warning.
    pub token_secret: Option<String>,
}

impl fmt::Debug for ChatConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatConfig")
            .field("listen", &self.listen)
            .field("default_channel", &self.default_channel)
            .field("max_message_chars", &self.max_message_chars)
            .field("messages_per_second", &self.messages_per_second)
            .field("message_burst", &self.message_burst)
            .field("max_rooms", &self.max_rooms)
            .field("redis_url", &self.redis_url)
            .field("redis_prefix", &self.redis_prefix)
            .field("node_lease", &self.node_lease)
            .field(
                "token_secret",
                &self.token_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 4002)),
            default_channel: "universal".into(),
            max_message_chars: 500,
            messages_per_second: 2,
            message_burst: 5,
            max_rooms: 10_000,
            token_secret: None,
            redis_url: None,
            redis_prefix: "open360:chat:".into(),
            node_lease: Duration::from_secs(15),
        }
    }
}

pub(crate) fn ensure(
    ok: bool,
    setting: &'static str,
    requirement: &'static str,
    value: impl fmt::Debug,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            setting,
            requirement,
            value: format!("{value:?}"),
        })
    }
}

impl HubConfig {
    /// Checks every setting; the first invalid one is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ensure(
            self.log_retention > 0,
            "log_retention",
            "at least 1",
            self.log_retention,
        )?;
        ensure(
            (1 << 10..=16 << 20).contains(&self.max_message_bytes),
            "max_message_bytes",
            "between 1 KiB and 16 MiB",
            self.max_message_bytes,
        )?;
        ensure(
            (16..=1 << 20).contains(&self.max_queued_per_socket),
            "max_queued_per_socket",
            "between 16 and 1,048,576",
            self.max_queued_per_socket,
        )?;
        if let Some(token) = &self.token {
            ensure(
                token.len() >= 16,
                "token",
                "at least 16 characters when set",
                "[redacted]",
            )?;
        }
        Ok(())
    }
}

impl ExternalApiConfig {
    /// Checks every setting; the first invalid one is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let timeout = self.status_timeout;
        ensure(
            !timeout.is_zero() && timeout <= Duration::from_secs(30),
            "status_timeout",
            "between 0 and 30 s",
            timeout,
        )
    }
}

impl ChatConfig {
    /// Checks every setting; the first invalid one is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ensure(
            !self.default_channel.trim().is_empty(),
            "default_channel",
            "non-empty",
            &self.default_channel,
        )?;
        ensure(
            (1..=100_000).contains(&self.max_message_chars),
            "max_message_chars",
            "between 1 and 100,000",
            self.max_message_chars,
        )?;
        ensure(
            self.messages_per_second > 0,
            "messages_per_second",
            "at least 1",
            self.messages_per_second,
        )?;
        ensure(
            self.message_burst > 0,
            "message_burst",
            "at least 1",
            self.message_burst,
        )?;
        ensure(
            self.max_rooms > 0,
            "max_rooms",
            "at least 1",
            self.max_rooms,
        )?;
        ensure(
            (Duration::from_millis(300)..=Duration::from_secs(3600)).contains(&self.node_lease),
            "node_lease",
            "between 300 ms and 1 h",
            self.node_lease,
        )?;
        if let Some(secret) = &self.token_secret {
            ensure(
                secret.len() >= 16,
                "token_secret",
                "at least 16 characters when set",
                "[redacted]",
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod validation {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_match_the_original_ports() {
        assert_eq!(HubConfig::default().validate(), Ok(()));
        assert_eq!(ExternalApiConfig::default().validate(), Ok(()));
        assert_eq!(ChatConfig::default().validate(), Ok(()));
        assert_eq!(ExternalApiConfig::default().listen.port(), 8080);
        assert_eq!(ChatConfig::default().listen.port(), 4002);
    }

    #[test]
    fn bounds_are_enforced_and_tokens_hidden() {
        let hub = HubConfig {
            token: Some("short".into()),
            ..HubConfig::default()
        };
        assert!(matches!(
            hub.validate(),
            Err(ConfigError::OutOfRange {
                setting: "token",
                ..
            })
        ));
        assert!(!format!("{hub:?}").contains("short"));
        let api = ExternalApiConfig {
            status_timeout: Duration::ZERO,
            ..ExternalApiConfig::default()
        };
        assert!(matches!(
            api.validate(),
            Err(ConfigError::OutOfRange {
                setting: "status_timeout",
                ..
            })
        ));
        let chat = ChatConfig {
            default_channel: " ".into(),
            ..ChatConfig::default()
        };
        assert!(matches!(
            chat.validate(),
            Err(ConfigError::OutOfRange {
                setting: "default_channel",
                ..
            })
        ));
        let chat = ChatConfig {
            max_message_chars: 0,
            ..ChatConfig::default()
        };
        assert!(matches!(
            chat.validate(),
            Err(ConfigError::OutOfRange {
                setting: "max_message_chars",
                ..
            })
        ));
    }
}
