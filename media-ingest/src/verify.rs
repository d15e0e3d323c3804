//! Who may publish: the [`KeyVerifier`] asked before any publisher is accepted.
//!
//! A verifier answers with a [`VerifiedKey`], the proof the server needs to accept a publisher.
//! Denials, errors and timeouts all refuse the publisher (fail closed).

use async_trait::async_trait;
use std::{collections::HashMap, net::SocketAddr, time::Duration};

/// What a publisher asks for: `rtmp://host/<app>/<key>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// The RTMP application (`live` for Open360; the channel for the coordinator).
    pub app: String,
    /// The stream key: the last path segment.
    pub key: String,
    /// The publisher's address.
    pub client: SocketAddr,
}

/// How a verified stream is to be packaged, as the verifier decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishOptions {
    /// Keep a VOD recording of the stream.
    pub record: bool,
    /// Preview images to make, if any.
    pub previews: Option<Preview>,
    /// Renditions to offer; empty means the original only.
    pub renditions: Vec<Rendition>,
    /// The embedder's public name for this stream (Open360: `<username>/<stream id>`), carried
    /// unchanged to [`IngestEvent::PostPublish`](crate::IngestEvent::PostPublish) and to every
    /// consumer's subscription. Never the key: it may appear in paths, URLs and logs.
    pub label: Option<String>,
}

/// A preview image of `width`×`height` every `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preview {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Time between images.
    pub interval: Duration,
}

/// One rendition of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rendition {
    /// The published stream as it is (remuxed, not re-encoded).
    Original,
    /// A re-encoded rendition.
    Scaled {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Frames per second.
        fps: u32,
        /// Video bitrate, if fixed.
        kbps: Option<u32>,
    },
}

/// Proof that a publisher's key was checked, carrying the options decided for its stream.
///
/// The server accepts a publisher only with one of these. It can be made only through
/// [`VerifiedKey::checked`], whose name is the promise: call it after checking the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedKey {
    options: PublishOptions,
}

impl VerifiedKey {
    /// The proof that the key of a request was checked and accepted, with its options.
    pub fn checked(options: PublishOptions) -> Self {
        Self { options }
    }

    /// The options for the stream.
    pub fn options(&self) -> &PublishOptions {
        &self.options
    }
}

/// Why a key was not accepted. Either way the publisher is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The verifier looked and said no.
    #[error("key refused: {0}")]
    Denied(String),
    /// The verifier could not decide (unreachable, malformed answer …).
    #[error("key verification unavailable: {0}")]
    Unavailable(String),
    /// The verifier did not answer in time.
    #[error("key verification timed out after {0:?}")]
    TimedOut(Duration),
}

/// Decides whether a publisher may publish.
#[async_trait]
pub trait KeyVerifier: Send + Sync + 'static {
    /// Checks `request`; only `Ok` lets the publisher in.
    async fn verify(&self, request: &PublishRequest) -> Result<VerifiedKey, VerifyError>;
}

/// A fixed table of `(app, key)` pairs, each with its options.
#[derive(Debug, Clone, Default)]
pub struct StaticKeys {
    keys: HashMap<(String, String), PublishOptions>,
}

impl StaticKeys {
    /// An empty table: it refuses everybody.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets `key` publish under `app`, with `options`.
    pub fn allow(
        mut self,
        app: impl Into<String>,
        key: impl Into<String>,
        options: PublishOptions,
    ) -> Self {
        self.keys.insert((app.into(), key.into()), options);
        self
    }
}

#[async_trait]
impl KeyVerifier for StaticKeys {
    async fn verify(&self, request: &PublishRequest) -> Result<VerifiedKey, VerifyError> {
        // The key is a secret: never log or echo it.
        match self.keys.get(&(request.app.clone(), request.key.clone())) {
            Some(options) => Ok(VerifiedKey::checked(options.clone())),
            None => Err(VerifyError::Denied(format!(
                "unknown key for app {:?}",
                request.app
            ))),
        }
    }
}

/// Verifiers that turn verification off. Using one is a decision that should be visible where
/// it is made, hence the module name.
pub mod danger {
    use super::*;

    /// Accepts every key, logging a warning for each publisher. For demos and tests only.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct AcceptAnyKey;

    #[async_trait]
    impl KeyVerifier for AcceptAnyKey {
        async fn verify(&self, request: &PublishRequest) -> Result<VerifiedKey, VerifyError> {
            tracing::warn!(app = %request.app, client = %request.client, "accepting a publisher WITHOUT key verification (danger::AcceptAnyKey)");
            Ok(VerifiedKey::checked(PublishOptions::default()))
        }
    }
}

#[cfg(test)]
mod tests_verify {
    use super::*;

    fn request(app: &str, key: &str) -> PublishRequest {
        PublishRequest {
            app: app.into(),
            key: key.into(),
            client: SocketAddr::from(([127, 0, 0, 1], 5000)),
        }
    }

    #[tokio::test]
    async fn the_static_table_accepts_only_its_pairs_and_never_echoes_keys() {
        let options = PublishOptions {
            record: true,
            ..PublishOptions::default()
        };
        let keys = StaticKeys::new().allow("live", "s3cret", options.clone());
        assert_eq!(
            keys.verify(&request("live", "s3cret"))
                .await
                .map(|v| v.options().clone()),
            Ok(options)
        );
        for (app, key) in [("live", "wrong"), ("other", "s3cret")] {
            let denied = keys.verify(&request(app, key)).await.expect_err("refused");
            assert!(matches!(denied, VerifyError::Denied(_)));
            assert!(
                !denied.to_string().contains("s3cret") && !denied.to_string().contains("wrong")
            );
        }
    }

    #[tokio::test]
    async fn accept_any_key_accepts() {
        assert!(
            danger::AcceptAnyKey
                .verify(&request("live", "anything"))
                .await
                .is_ok()
        );
    }
}
