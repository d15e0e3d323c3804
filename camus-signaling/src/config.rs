use crate::ConfigError;
use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

/// The Camus server's settings. The defaults are the original's where it had one.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CamusConfig {
    /// Where HTTP and WebSocket are served. Default `0.0.0.0:5000` (the original's Quart port).
    pub listen: SocketAddr,
    /// Where the SQLite database lives. Default `./data/camus`.
    pub data_dir: PathBuf,
    /// The guest limit of a room created without one. Default 100 (the original's); 0 means
    /// none, bounded still by [`max_clients_per_room`](Self::max_clients_per_room).
    pub default_guest_limit: u32,
    /// Clients in one room, whatever its guest limit. Default 500.
    pub max_clients_per_room: u32,
    /// Rooms held by one server. Default 10,000.
    pub max_rooms: usize,
    /// The largest signaling message accepted, in bytes. Default 64 KiB (an SDP offer with many
    /// tracks is ~10 KiB); a larger one gets an `error` reply and is dropped.
    pub max_message_bytes: usize,
    /// Sustained messages per second per client (token bucket). Default 50.
    pub messages_per_second: u32,
    /// Messages a client may send in a burst above the sustained rate. Default 200 (the ICE
    /// candidates of a fresh mesh call arrive in a burst).
    pub message_burst: u32,
    /// How often silent clients are pinged. Default 20 s.
    pub ping_interval: Duration,
    /// A client silent this long gets a `ping`. Default 30 s.
    pub ping_after_silence: Duration,
    /// How often silent clients are reaped. Default 30 s.
    pub reap_interval: Duration,
    /// A client silent this long is removed (`bye` and `room-info` to the others). Default 90 s.
    pub reap_after_silence: Duration,
    /// A room with no client for this long is deleted. Default 5 min.
    pub room_idle_timeout: Duration,
    /// STUN and TURN servers offered to clients.
    pub ice: IceConfig,
    /// With a Redis URL, rooms span every server sharing that Redis (and the store, and the
    /// cookie secret). Default none.
    pub redis_url: Option<String>,
    /// What the cluster's Redis channel starts with. Default `camus:`.
    pub redis_prefix: String,
    /// A server of the cluster silent this long is taken as gone: its clients leave their
    /// rooms on the others. Default 15 s.
    pub server_timeout: Duration,
    /// The secret room cookies are signed with (at least 32 characters). Default none: one is
    /// made on first start and kept in `<data_dir>/cookie-secret`, so cookies survive restarts
    /// (the original made a new one per process). Servers sharing rooms must share it.
    pub cookie_secret: Option<String>,
    /// Mark room cookies `Secure` (sent over HTTPS only): set it when serving behind TLS.
    /// Default false.
    pub secure_cookies: bool,
    /// Frames that may wait to be written to one client; a client further behind is
    /// disconnected (close code 1008) and may reconnect. Default 1,024.
    pub client_queue: usize,
}

impl fmt::Debug for CamusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CamusConfig")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("default_guest_limit", &self.default_guest_limit)
            .field("max_clients_per_room", &self.max_clients_per_room)
            .field("max_rooms", &self.max_rooms)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("messages_per_second", &self.messages_per_second)
            .field("message_burst", &self.message_burst)
            .field("ping_interval", &self.ping_interval)
            .field("ping_after_silence", &self.ping_after_silence)
            .field("reap_interval", &self.reap_interval)
            .field("reap_after_silence", &self.reap_after_silence)
            .field("room_idle_timeout", &self.room_idle_timeout)
            .field("ice", &self.ice)
            .field("redis_url", &self.redis_url)
            .field("redis_prefix", &self.redis_prefix)
            .field("server_timeout", &self.server_timeout)
            .field(
                "cookie_secret",
                &self.cookie_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("secure_cookies", &self.secure_cookies)
            .field("client_queue", &self.client_queue)
            .finish()
    }
}

impl Default for CamusConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 5000)),
            data_dir: PathBuf::from("./data/camus"),
            default_guest_limit: 100,
            max_clients_per_room: 500,
            max_rooms: 10_000,
            max_message_bytes: 64 << 10,
            messages_per_second: 50,
            message_burst: 200,
            ping_interval: Duration::from_secs(20),
            ping_after_silence: Duration::from_secs(30),
            reap_interval: Duration::from_secs(30),
            reap_after_silence: Duration::from_secs(90),
            room_idle_timeout: Duration::from_secs(300),
            ice: IceConfig::default(),
            redis_url: None,
            redis_prefix: "camus:".into(),
            server_timeout: Duration::from_secs(15),
            cookie_secret: None,
            secure_cookies: false,
            client_queue: 1024,
        }
    }
}

/// The ICE servers handed to clients in `ice-servers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IceConfig {
    /// STUN URLs (`stun:host:port`), each sent as an entry of kind `stun`. Default none.
    pub stun_urls: Vec<String>,
    /// A TURN server with coturn REST credentials, sent as an entry of kind `turn`.
    pub turn: Option<TurnConfig>,
}

/// A TURN server using coturn's REST credentials: the username is `<unix expiry>:<client id>`
/// and the credential base64(HMAC-SHA1(secret, username)).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TurnConfig {
    /// TURN URLs (`turn:host:port`, `turns:…`).
    pub urls: Vec<String>,
    /// The secret shared with the TURN server (coturn's `static-auth-secret`).
    pub static_auth_secret: String,
    /// How long a credential stays valid. Default 6 h (the original's).
    pub credential_ttl: Duration,
}

impl fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnConfig")
            .field("urls", &self.urls)
            .field("static_auth_secret", &"[redacted]")
            .field("credential_ttl", &self.credential_ttl)
            .finish()
    }
}

impl TurnConfig {
    /// A TURN server at `url` with `secret` and the default 6 h credential lifetime.
    pub fn new(url: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            urls: vec![url.into()],
            static_auth_secret: secret.into(),
            credential_ttl: Duration::from_secs(6 * 3600),
        }
    }
}

impl IceConfig {
    /// Reads the original Camus variables through `get`: `STUN_HOST`/`STUN_PORT` give a STUN
    /// entry; `TURN_HOST`, `TURN_PORT` and `TURN_STATIC_AUTH_SECRET` together give a TURN entry
    /// (and a STUN entry on the same host when `STUN_HOST` is unset, as coturn serves both).
    /// Ports default to 3478. Unset or empty variables count as absent.
    pub fn from_original_variables(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let var = |name: &str| get(name).filter(|value| !value.trim().is_empty());
        let port = |name: &'static str| -> Result<u16, ConfigError> {
            match var(name) {
                None => Ok(3478),
                Some(value) => value.trim().parse::<u16>().ok().filter(|p| *p != 0).ok_or(
                    ConfigError::InvalidVariable {
                        variable: name,
                        value,
                        reason: "not a port number",
                    },
                ),
            }
        };
        let turn_host = var("TURN_HOST");
        let secret = var("TURN_STATIC_AUTH_SECRET");
        let turn = match (&turn_host, secret) {
            (Some(host), Some(secret)) => Some(TurnConfig::new(
                format!("turn:{host}:{}", port("TURN_PORT")?),
                secret,
            )),
            _ => None,
        };
        let stun_urls = match (var("STUN_HOST"), &turn) {
            (Some(host), _) => vec![format!("stun:{host}:{}", port("STUN_PORT")?)],
            (None, Some(_)) => turn_host
                .map(|host| format!("stun:{host}:{}", port("TURN_PORT").unwrap_or(3478)))
                .into_iter()
                .collect(),
            (None, None) => Vec::new(),
        };
        Ok(Self { stun_urls, turn })
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

impl CamusConfig {
    /// Checks every setting; the first invalid one is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = |d: Duration| !d.is_zero();
        ensure(
            self.max_clients_per_room >= 2,
            "max_clients_per_room",
            "at least 2",
            self.max_clients_per_room,
        )?;
        ensure(
            self.default_guest_limit <= self.max_clients_per_room,
            "default_guest_limit",
            "at most max_clients_per_room",
            self.default_guest_limit,
        )?;
        ensure(
            self.max_rooms > 0,
            "max_rooms",
            "at least 1",
            self.max_rooms,
        )?;
        ensure(
            (1 << 10..=16 << 20).contains(&self.max_message_bytes),
            "max_message_bytes",
            "between 1 KiB and 16 MiB",
            self.max_message_bytes,
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
            positive(self.ping_interval),
            "ping_interval",
            "more than 0",
            self.ping_interval,
        )?;
        ensure(
            positive(self.reap_interval),
            "reap_interval",
            "more than 0",
            self.reap_interval,
        )?;
        ensure(
            positive(self.ping_after_silence),
            "ping_after_silence",
            "more than 0",
            self.ping_after_silence,
        )?;
        // A client must be pinged (and get a chance to answer) before it can be reaped.
        ensure(
            self.reap_after_silence > self.ping_after_silence + self.ping_interval,
            "reap_after_silence",
            "longer than ping_after_silence + ping_interval",
            self.reap_after_silence,
        )?;
        ensure(
            positive(self.room_idle_timeout),
            "room_idle_timeout",
            "more than 0",
            self.room_idle_timeout,
        )?;
        ensure(
            self.server_timeout >= Duration::from_millis(400),
            "server_timeout",
            "at least 400 ms",
            self.server_timeout,
        )?;
        ensure(
            (16..=1 << 20).contains(&self.client_queue),
            "client_queue",
            "between 16 and 1,048,576",
            self.client_queue,
        )?;
        if let Some(secret) = &self.cookie_secret {
            ensure(
                secret.len() >= 32,
                "cookie_secret",
                "at least 32 characters when set",
                "[redacted]",
            )?;
        }
        for url in &self.ice.stun_urls {
            ensure(
                url.starts_with("stun:") || url.starts_with("stuns:"),
                "ice.stun_urls",
                "stun: or stuns: URLs",
                url,
            )?;
        }
        if let Some(turn) = &self.ice.turn {
            ensure(
                !turn.urls.is_empty(),
                "ice.turn.urls",
                "at least one URL",
                &turn.urls,
            )?;
            for url in &turn.urls {
                ensure(
                    url.starts_with("turn:") || url.starts_with("turns:"),
                    "ice.turn.urls",
                    "turn: or turns: URLs",
                    url,
                )?;
            }
            ensure(
                !turn.static_auth_secret.is_empty(),
                "ice.turn.static_auth_secret",
                "non-empty",
                "",
            )?;
            ensure(
                turn.credential_ttl >= Duration::from_secs(60),
                "ice.turn.credential_ttl",
                "at least 1 min",
                turn.credential_ttl,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod validation {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<IceConfig, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        IceConfig::from_original_variables(|name| vars.get(name).cloned())
    }

    #[test]
    fn the_defaults_are_valid_and_match_the_original() {
        let config = CamusConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.default_guest_limit, 100);
        assert_eq!(config.reap_after_silence, Duration::from_secs(90));
        assert_eq!(config.room_idle_timeout, Duration::from_secs(300));
    }

    #[test]
    fn turn_needs_host_and_secret() {
        assert_eq!(from(&[]).expect("valid"), IceConfig::default());
        assert_eq!(
            from(&[("TURN_HOST", "t.example")]).expect("valid").turn,
            None
        );
        let ice = from(&[
            ("TURN_HOST", "t.example"),
            ("TURN_PORT", "5349"),
            ("TURN_STATIC_AUTH_SECRET", "s"),
        ])
        .expect("valid");
        let turn = ice.turn.expect("a TURN entry");
        assert_eq!(turn.urls, ["turn:t.example:5349"]);
        assert_eq!(turn.credential_ttl, Duration::from_secs(6 * 3600));
        assert_eq!(ice.stun_urls, ["stun:t.example:5349"]);
    }

    #[test]
    fn stun_has_its_own_host() {
        let ice = from(&[
            ("STUN_HOST", "s.example"),
            ("TURN_HOST", "t.example"),
            ("TURN_STATIC_AUTH_SECRET", "x"),
        ])
        .expect("valid");
        assert_eq!(ice.stun_urls, ["stun:s.example:3478"]);
        assert_eq!(ice.turn.expect("turn").urls, ["turn:t.example:3478"]);
    }

    #[test]
    fn a_bad_port_is_reported_by_name() {
        let error =
            from(&[("STUN_HOST", "s.example"), ("STUN_PORT", "99999")]).expect_err("invalid");
        assert!(
            matches!(
                error,
                ConfigError::InvalidVariable {
                    variable: "STUN_PORT",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn the_secret_is_never_printed() {
        let turn = TurnConfig::new("turn:t.example:3478", "hunter2");
        assert!(!format!("{turn:?}").contains("hunter2"));
    }

    /// A setting's name, and a change that makes it invalid.
    type Breakage = (&'static str, fn(&mut CamusConfig));

    #[test]
    fn each_bound_is_enforced() {
        let broken: &[Breakage] = &[
            ("max_clients_per_room", |c| c.max_clients_per_room = 1),
            ("default_guest_limit", |c| c.default_guest_limit = 501),
            ("max_message_bytes", |c| c.max_message_bytes = 10),
            ("messages_per_second", |c| c.messages_per_second = 0),
            ("reap_after_silence", |c| {
                c.reap_after_silence = Duration::from_secs(40)
            }),
            ("ice.stun_urls", |c| {
                c.ice.stun_urls = vec!["turn:x:1".into()]
            }),
            ("ice.turn.urls", |c| {
                c.ice.turn = Some(TurnConfig::new("stun:x:1", "s"))
            }),
            ("ice.turn.static_auth_secret", |c| {
                c.ice.turn = Some(TurnConfig::new("turn:x:1", ""))
            }),
        ];
        for (setting, breaks) in broken {
            let setting = *setting;
            let mut config = CamusConfig::default();
            breaks(&mut config);
            match config.validate() {
                Err(ConfigError::OutOfRange {
                    setting: reported, ..
                }) => assert_eq!(reported, setting),
                other => panic!("{setting}: expected an error, got {other:?}"),
            }
        }
    }
}
