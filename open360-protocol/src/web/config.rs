//! The web service's settings.

use crate::{ConfigError, config::ensure};
use std::{fmt, net::SocketAddr, time::Duration};

/// How the web service runs.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebConfig {
    /// Where the site listens. Default `0.0.0.0:8000`.
    pub listen: SocketAddr,
    /// Where browsers fetch stream media (the ingest's [`media_router`](crate::media_router)):
    /// a path on this site (default `/media`, when the ingest's router is merged in, as the
    /// `open360` binary does) or an absolute URL (`http://ingest.example:8001/media`).
    pub media_url: String,
    /// Where browsers reach the chat (`http://chat.example:4002`). Default none: the page's own
    /// host on [`chat_port`](Self::chat_port).
    pub chat_url: Option<String>,
    /// The chat's port on the page's own host, when `chat_url` is not set. Default 4002.
    pub chat_port: u16,
    /// The RTMP address shown to streamers on the dashboard (`rtmp://ingest.example/live`).
    /// Default none: the site's host, port 1935, app `live`.
    pub rtmp_url: Option<String>,
    /// The secret chat tokens are signed with, shared with the chat (at least 16
    /// characters). Default none: logged-in users chat without a token, and a chat with a secret
    /// refuses their names.
    pub chat_token_secret: Option<String>,
    /// How long a chat token holds. Default 12 h.
    pub chat_token_ttl: Duration,
    /// How long a login lasts. Default 7 days.
    pub session_ttl: Duration,
    /// Logins held at once; the oldest is dropped beyond it. Default 100,000.
    pub max_sessions: usize,
    /// Mark the session cookie `Secure` (the site is served over https). Default false.
    pub secure_cookies: bool,
    /// How long `streamStats` waits for the chat's member list. Default 1 s.
    pub members_timeout: Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8000)),
            media_url: "/media".into(),
            chat_url: None,
            chat_port: 4002,
            rtmp_url: None,
            chat_token_secret: None,
            chat_token_ttl: Duration::from_secs(12 * 3600),
            session_ttl: Duration::from_secs(7 * 24 * 3600),
            max_sessions: 100_000,
            secure_cookies: false,
            members_timeout: Duration::from_secs(1),
        }
    }
}

impl fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfig")
            .field("listen", &self.listen)
            .field("media_url", &self.media_url)
            .field("chat_url", &self.chat_url)
            .field("chat_port", &self.chat_port)
            .field("rtmp_url", &self.rtmp_url)
            .field(
                "chat_token_secret",
                &self.chat_token_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("chat_token_ttl", &self.chat_token_ttl)
            .field("session_ttl", &self.session_ttl)
            .field("max_sessions", &self.max_sessions)
            .field("secure_cookies", &self.secure_cookies)
            .field("members_timeout", &self.members_timeout)
            .finish()
    }
}

impl WebConfig {
    /// Checks every setting; the first invalid one is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(secret) = &self.chat_token_secret {
            ensure(
                secret.len() >= 16,
                "chat_token_secret",
                "at least 16 characters when set",
                "[redacted]",
            )?;
        }
        ensure(
            !self.media_url.is_empty()
                && !self.media_url.contains(['"', '\'', '<', '>', ' '])
                && !self.media_url.ends_with('/'),
            "media_url",
            "a path or URL without quotes, spaces or a trailing slash",
            &self.media_url,
        )?;
        if let Some(url) = &self.chat_url {
            ensure(
                (url.starts_with("http://") || url.starts_with("https://"))
                    && !url.contains(['"', '\'', '<', '>', ' ']),
                "chat_url",
                "an http(s) URL without quotes or spaces",
                url,
            )?;
        }
        ensure(
            self.session_ttl >= Duration::from_secs(60),
            "session_ttl",
            "at least 1 minute",
            self.session_ttl,
        )?;
        ensure(
            self.chat_token_ttl >= Duration::from_secs(60),
            "chat_token_ttl",
            "at least 1 minute",
            self.chat_token_ttl,
        )?;
        ensure(
            self.max_sessions >= 1,
            "max_sessions",
            "at least 1",
            self.max_sessions,
        )?;
        ensure(
            !self.members_timeout.is_zero() && self.members_timeout <= Duration::from_secs(30),
            "members_timeout",
            "between 0 and 30 s",
            self.members_timeout,
        )
    }
}
