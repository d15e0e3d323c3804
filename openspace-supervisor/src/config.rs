use crate::ConfigError;
use std::{fmt, net::SocketAddr, time::Duration};

/// The rendering-server supervisor's settings.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SupervisorConfig {
    /// Where the JSON command API listens. Default `0.0.0.0:4699` (the original's port table).
    pub listen: SocketAddr,
    /// Instances run at once (slots 0 … capacity-1). Default 3.
    pub capacity: u32,
    /// Instance n's API WebSocket port is `api_port_base + n`. Default 4682.
    pub api_port_base: u16,
    /// The browser talking to instance n has WebRTC peer id `browser_peer_offset + n`; instance n
    /// has peer id n. Default 100.
    pub browser_peer_offset: u32,
    /// An instance not ready within this time is stopped and its slot freed. Default 120 s.
    pub init_timeout: Duration,
    /// After a graceful terminate, how long before the instance is killed. Default 10 s.
    pub stop_grace: Duration,
    /// When set, every command must carry this secret or is refused (`"unauthorized"`).
    pub shared_secret: Option<String>,
    /// The signaling server instances register with (`{signaling_url}` in the instance
    /// command). Default `ws://127.0.0.1:8443`.
    pub signaling_url: String,
}

impl fmt::Debug for SupervisorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorConfig")
            .field("listen", &self.listen)
            .field("capacity", &self.capacity)
            .field("api_port_base", &self.api_port_base)
            .field("browser_peer_offset", &self.browser_peer_offset)
            .field("init_timeout", &self.init_timeout)
            .field("stop_grace", &self.stop_grace)
            .field(
                "shared_secret",
                &self.shared_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("signaling_url", &self.signaling_url)
            .finish()
    }
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 4699)),
            capacity: 3,
            api_port_base: 4682,
            browser_peer_offset: 100,
            init_timeout: Duration::from_secs(120),
            stop_grace: Duration::from_secs(10),
            shared_secret: None,
            signaling_url: "ws://127.0.0.1:8443".into(),
        }
    }
}

fn ensure(
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

impl SupervisorConfig {
    /// Checks every setting; the first invalid one is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ensure(
            (1..=1000).contains(&self.capacity),
            "capacity",
            "between 1 and 1000",
            self.capacity,
        )?;
        ensure(
            self.api_port(self.capacity - 1).is_some(),
            "api_port_base",
            "low enough for every slot's port",
            self.api_port_base,
        )?;
        ensure(
            self.api_port_base > 0,
            "api_port_base",
            "more than 0",
            self.api_port_base,
        )?;
        // Instance ids are 0 … capacity-1; browser ids must never collide with them.
        ensure(
            self.browser_peer_offset >= self.capacity,
            "browser_peer_offset",
            "at least capacity (instance and browser peer ids must not collide)",
            self.browser_peer_offset,
        )?;
        ensure(
            !self.init_timeout.is_zero(),
            "init_timeout",
            "more than 0",
            self.init_timeout,
        )?;
        if let Some(secret) = &self.shared_secret {
            ensure(
                secret.len() >= 16,
                "shared_secret",
                "at least 16 characters when set",
                "[redacted]",
            )?;
        }
        Ok(())
    }

    /// The API port of instance `slot`, if the slot exists and the port fits.
    pub fn api_port(&self, slot: u32) -> Option<u16> {
        if slot >= self.capacity {
            return None;
        }
        u16::try_from(slot)
            .ok()
            .and_then(|slot| self.api_port_base.checked_add(slot))
    }

    /// The WebRTC peer id of the browser watching instance `slot`, if the slot exists.
    pub fn browser_peer_id(&self, slot: u32) -> Option<u32> {
        (slot < self.capacity)
            .then(|| self.browser_peer_offset.checked_add(slot))
            .flatten()
    }
}

/// The signaling server's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignalingConfig {
    /// Where the signaling WebSocket listens. Default `0.0.0.0:8443` (the original's).
    pub listen: SocketAddr,
    /// A SESSION request whose partner has not registered within this time expires. Default 60 s.
    pub pending_session_ttl: Duration,
    /// The largest message accepted, in bytes. Default 256 KiB (SDP with many candidates).
    pub max_message_bytes: usize,
}

impl Default for SignalingConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8443)),
            pending_session_ttl: Duration::from_secs(60),
            max_message_bytes: 256 << 10,
        }
    }
}

impl SignalingConfig {
    /// Checks every setting; the first invalid one is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ensure(
            !self.pending_session_ttl.is_zero(),
            "pending_session_ttl",
            "more than 0",
            self.pending_session_ttl,
        )?;
        ensure(
            (1 << 10..=16 << 20).contains(&self.max_message_bytes),
            "max_message_bytes",
            "between 1 KiB and 16 MiB",
            self.max_message_bytes,
        )
    }
}

/// The session backend's settings.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendConfig {
    /// Where the backend's HTTP API (and the frontend's pages) listen. Default `0.0.0.0:5000`
    /// (the original's).
    pub listen: SocketAddr,
    /// How often a starting instance's STATUS is polled (with our supervisor, how long one
    /// STATUS waits for RUNNING), and the rendering servers' health checked. Default 5 s (the
    /// original's).
    pub poll_interval: Duration,
    /// A session with no activity for this long is stopped. Default 30 min.
    pub idle_session_timeout: Duration,
    /// Consecutive unanswered polls after which a rendering server is marked down. Default 3.
    pub down_after_failures: u32,
    /// The rendering servers sessions are placed on.
    pub servers: Vec<RenderingServer>,
    /// Signs the browsers' session tokens (at least 32 characters). Default none: one is made
    /// per process, so tokens die with it.
    pub session_secret: Option<String>,
    /// How long a session token stays valid. Default 12 h.
    pub session_token_ttl: Duration,
    /// The signaling server's token secret: a running session's URL then carries a token for
    /// the browser's peer id (`browser_peer_offset` + slot), valid as long as a session token.
    /// Default none (no token in the URL).
    pub signaling_secret: Option<String>,
    /// The browser of slot n is peer `browser_peer_offset + n`. Default 100 (the original's).
    pub browser_peer_offset: u32,
}

/// A rendering server the backend may place sessions on.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RenderingServer {
    /// Its name, in logs and `GET /servers`.
    pub name: String,
    /// Its supervisor's command API (`ws://host:4699`).
    pub command_url: String,
    /// Its shared secret, when its supervisor wants one.
    pub secret: Option<String>,
    /// Where browsers load its Web GUI (`http://host:4690/frontend/`); the session URL is this
    /// with `#/streaming?id=<slot>` appended.
    pub gui_url: String,
    /// The signaling server as browsers reach it, when not `ws://<GUI host>:8443`: passed to
    /// the Web GUI in the session URL (`&signaling=`).
    pub browser_signaling_url: Option<String>,
}

impl RenderingServer {
    /// A server named `name` whose supervisor is at `command_url` and Web GUI at `gui_url`.
    pub fn new(
        name: impl Into<String>,
        command_url: impl Into<String>,
        gui_url: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            command_url: command_url.into(),
            secret: None,
            gui_url: gui_url.into(),
            browser_signaling_url: None,
        }
    }
}

impl fmt::Debug for RenderingServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderingServer")
            .field("name", &self.name)
            .field("command_url", &self.command_url)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("gui_url", &self.gui_url)
            .field("browser_signaling_url", &self.browser_signaling_url)
            .finish()
    }
}

impl fmt::Debug for BackendConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendConfig")
            .field("listen", &self.listen)
            .field("poll_interval", &self.poll_interval)
            .field("idle_session_timeout", &self.idle_session_timeout)
            .field("down_after_failures", &self.down_after_failures)
            .field("servers", &self.servers)
            .field(
                "session_secret",
                &self.session_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("session_token_ttl", &self.session_token_ttl)
            .field(
                "signaling_secret",
                &self.signaling_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("browser_peer_offset", &self.browser_peer_offset)
            .finish()
    }
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 5000)),
            poll_interval: Duration::from_secs(5),
            idle_session_timeout: Duration::from_secs(30 * 60),
            down_after_failures: 3,
            servers: Vec::new(),
            session_secret: None,
            session_token_ttl: Duration::from_secs(12 * 3600),
            signaling_secret: None,
            browser_peer_offset: 100,
        }
    }
}

impl BackendConfig {
    /// Checks every setting; the first invalid one is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ensure(
            !self.poll_interval.is_zero(),
            "poll_interval",
            "more than 0",
            self.poll_interval,
        )?;
        ensure(
            self.idle_session_timeout > self.poll_interval,
            "idle_session_timeout",
            "longer than poll_interval",
            self.idle_session_timeout,
        )?;
        ensure(
            self.down_after_failures > 0,
            "down_after_failures",
            "at least 1",
            self.down_after_failures,
        )?;
        if let Some(secret) = &self.session_secret {
            ensure(
                secret.len() >= 32,
                "session_secret",
                "at least 32 characters when set",
                "[redacted]",
            )?;
        }
        ensure(
            !self.session_token_ttl.is_zero(),
            "session_token_ttl",
            "more than 0",
            self.session_token_ttl,
        )
    }
}

#[cfg(test)]
mod validation {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_match_the_original() {
        let config = SupervisorConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.listen.port(), 4699);
        assert_eq!(
            (config.api_port(0), config.api_port(2), config.api_port(3)),
            (Some(4682), Some(4684), None)
        );
        assert_eq!(
            (config.browser_peer_id(0), config.browser_peer_id(3)),
            (Some(100), None)
        );
        assert_eq!(SignalingConfig::default().validate(), Ok(()));
        assert_eq!(BackendConfig::default().validate(), Ok(()));
    }

    #[test]
    fn peer_ids_and_ports_never_collide_or_overflow() {
        let mut config = SupervisorConfig {
            capacity: 150,
            ..SupervisorConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::OutOfRange {
                setting: "browser_peer_offset",
                ..
            })
        ));
        config.browser_peer_offset = 1000;
        assert_eq!(config.validate(), Ok(()));
        config.api_port_base = 65500;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::OutOfRange {
                setting: "api_port_base",
                ..
            })
        ));
    }

    #[test]
    fn other_bounds_are_enforced() {
        let zero = SupervisorConfig {
            capacity: 0,
            ..SupervisorConfig::default()
        };
        assert!(matches!(
            zero.validate(),
            Err(ConfigError::OutOfRange {
                setting: "capacity",
                ..
            })
        ));
        let weak = SupervisorConfig {
            shared_secret: Some("short".into()),
            ..SupervisorConfig::default()
        };
        assert!(matches!(
            weak.validate(),
            Err(ConfigError::OutOfRange {
                setting: "shared_secret",
                ..
            })
        ));
        assert!(!format!("{weak:?}").contains("short"));
        let backend = BackendConfig {
            poll_interval: Duration::ZERO,
            ..BackendConfig::default()
        };
        assert!(matches!(
            backend.validate(),
            Err(ConfigError::OutOfRange {
                setting: "poll_interval",
                ..
            })
        ));
    }
}
