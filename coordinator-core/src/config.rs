use crate::ConfigError;
use std::{
    fmt,
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
    time::Duration,
};

/// The coordinator's settings. Defaults are the original's (see the seed's configuration tables)
/// except where `DECISIONS.md` makes the coordinator fail closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CoordinatorConfig {
    /// `KEY_VERIFICATION_URL` and its auth. Unset: every key is accepted (as documented), with a
    /// loud start-up warning.
    pub key_verification: Option<Webhook>,
    /// `KEY_VERIFICATION_TIMEOUT_SECONDS` (ours): a slower answer denies. Default 10 s, below
    /// the streaming server's own 20 s.
    pub key_verification_timeout: Duration,
    /// `EVENT_CALLBACK_URL` and its auth. Unset: no callbacks are sent.
    pub event_callback: Option<Webhook>,
    /// `COMMANDS_API_AUTH` and its credentials. Unset: every commands-API request gets 401.
    pub commands_auth: Option<CommandsAuth>,
    /// `CONTROL_SECRET`, the HS256 key of the control links' JWTs. Unset or empty: every control
    /// link is refused (the original turned authentication off).
    pub control_secret: Option<Secret>,
    /// `HTTP_PORT`. Default 80.
    pub http_port: u16,
    /// `SSL_PORT`, `SSL_CERT`, `SSL_KEY`, `SSL_CHECK_RELOAD_SECONDS`. Default none.
    pub tls: Option<TlsConfig>,
    /// `BIND_ADDRESS`. Default all interfaces (`0.0.0.0`).
    pub bind_address: IpAddr,
    /// `LOG_REQUESTS` (`YES`/`NO`). Default yes.
    pub log_requests: bool,
    /// `LOG_DEBUG` (`YES`/`NO`). Default no.
    pub log_debug: bool,
    /// `ID_MAX_LENGTH`: the longest channel id and stream key. Default 128.
    pub id_max_length: usize,
    /// `HEARTBEAT_SECONDS` (ours): how often each side of a control link sends `HEARTBEAT`.
    /// Default 20 s (the original's).
    pub heartbeat_interval: Duration,
    /// `LINK_TIMEOUT_SECONDS` (ours): a control link silent this long is dropped and its load
    /// released. Default 60 s.
    pub link_timeout: Duration,
    /// `EVENT_CALLBACK_RETRY_SECONDS` (ours): the first delay before a failed event callback is
    /// retried; each further failure doubles it, up to 5 minutes. Default 10 s (the original
    /// retried every 10 s).
    pub callback_retry_interval: Duration,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self {
            key_verification: None,
            key_verification_timeout: Duration::from_secs(10),
            event_callback: None,
            commands_auth: None,
            control_secret: None,
            http_port: 80,
            tls: None,
            bind_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            log_requests: true,
            log_debug: false,
            id_max_length: 128,
            heartbeat_interval: Duration::from_secs(20),
            link_timeout: Duration::from_secs(60),
            callback_retry_interval: Duration::from_secs(10),
        }
    }
}

/// An application endpoint the coordinator POSTs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// The URL.
    pub url: String,
    /// How requests authenticate.
    pub auth: WebhookAuth,
}

/// How webhook requests authenticate (the seed's `*_AUTH` methods).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebhookAuth {
    /// No `Authorization` header.
    None,
    /// `Authorization: Basic base64(user:password)`.
    Basic {
        /// `*_AUTH_USER`.
        user: String,
        /// `*_PASSWORD` (the seed's name; `*_AUTH_PASSWORD` is accepted too).
        password: Secret,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// `*_AUTH_TOKEN`.
        token: Secret,
    },
    /// `Authorization: <value>`, verbatim.
    Custom {
        /// `*_AUTH_CUSTOM`.
        value: Secret,
    },
}

impl WebhookAuth {
    /// The `Authorization` header value to send, if any.
    pub fn header_value(&self) -> Option<String> {
        use base64::Engine as _;
        match self {
            Self::None => None,
            Self::Basic { user, password } => {
                let pair = format!("{user}:{}", password.expose());
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                Some(format!("Basic {encoded}"))
            }
            Self::Bearer { token } => Some(format!("Bearer {}", token.expose())),
            Self::Custom { value } => Some(value.expose().to_owned()),
        }
    }
}

/// How commands-API requests must authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandsAuth {
    /// HTTP Basic with `COMMANDS_API_AUTH_USER` and `COMMANDS_API_AUTH_PASSWORD`.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: Secret,
    },
    /// `Authorization: Bearer <COMMANDS_API_AUTH_TOKEN>`.
    Bearer {
        /// The token.
        token: Secret,
    },
}

/// TLS for the HTTP API and control links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// `SSL_PORT`. Default 443.
    pub port: u16,
    /// `SSL_CERT`: the certificate chain (PEM).
    pub cert: PathBuf,
    /// `SSL_KEY`: the private key (PEM).
    pub key: PathBuf,
    /// `SSL_CHECK_RELOAD_SECONDS`: how often to check the files for renewal. Default never.
    pub reload_check: Option<Duration>,
}

/// A secret value: compared and sent, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends or verifies it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
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

impl CoordinatorConfig {
    /// Checks every setting; the first invalid one is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let timeout = self.key_verification_timeout;
        // The streaming server gives up on the coordinator after 20 s; verification must have
        // denied by then, or the publisher hangs on a decision nobody will deliver.
        ensure(
            !timeout.is_zero() && timeout < Duration::from_secs(20),
            "key_verification_timeout",
            "more than 0 and less than 20 s",
            timeout,
        )?;
        ensure(
            (1..=4096).contains(&self.id_max_length),
            "id_max_length",
            "between 1 and 4096",
            self.id_max_length,
        )?;
        ensure(
            !self.heartbeat_interval.is_zero(),
            "heartbeat_interval",
            "more than 0",
            self.heartbeat_interval,
        )?;
        ensure(
            self.link_timeout >= self.heartbeat_interval * 2,
            "link_timeout",
            "at least two heartbeat intervals",
            self.link_timeout,
        )?;
        ensure(
            !self.callback_retry_interval.is_zero(),
            "callback_retry_interval",
            "more than 0",
            self.callback_retry_interval,
        )?;
        for (setting, hook) in [
            ("key_verification.url", &self.key_verification),
            ("event_callback.url", &self.event_callback),
        ] {
            if let Some(hook) = hook {
                let url = hook.url.as_str();
                ensure(
                    url.starts_with("http://") || url.starts_with("https://"),
                    setting,
                    "an http(s) URL",
                    url,
                )?;
            }
        }
        if let Some(tls) = &self.tls {
            ensure(
                tls.port != self.http_port || tls.port == 0,
                "tls.port",
                "different from http_port (or both 0, two free ports)",
                tls.port,
            )?;
        }
        Ok(())
    }
}
