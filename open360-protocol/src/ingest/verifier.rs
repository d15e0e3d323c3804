//! Publishers checked with `web-api` through the hub.

use super::INGEST_APP;
use crate::client::{AskError, ServiceClient};
use async_trait::async_trait;
use media_ingest::{
    KeyVerifier, Preview, PublishOptions, PublishRequest, VerifiedKey, VerifyError,
};
use rand::{Rng, distr::Alphanumeric};
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};

/// Asks `web-api` `checkKeyExists {streamKey}` for each publisher of the app `live`. Only the
/// reply `{exists: true, username}` accepts it; the stream is then labelled
/// `<username>/<stream id>` with a fresh stream id. The ingest server's verification timeout
/// bounds the wait.
#[derive(Clone)]
pub struct HubKeyVerifier {
    hub: ServiceClient,
    thumbnail: Option<Preview>,
}

impl HubKeyVerifier {
    /// Checks keys through `hub`, and asks for `thumbnail`s of accepted streams.
    pub fn new(hub: ServiceClient, thumbnail: Option<Preview>) -> Self {
        Self { hub, thumbnail }
    }
}

#[async_trait]
impl KeyVerifier for HubKeyVerifier {
    async fn verify(&self, request: &PublishRequest) -> Result<VerifiedKey, VerifyError> {
        if request.app != INGEST_APP {
            return Err(VerifyError::Denied(format!(
                "unknown application {:?} (publish to /{INGEST_APP}/<stream key>)",
                request.app
            )));
        }
        let data = json!({ "streamKey": request.key });
        let reply = self
            .hub
            .ask("web-api", "checkKeyExists", data)
            .await
            .map_err(|error| match error {
                AskError::Timeout { timeout, .. } => VerifyError::TimedOut(timeout),
                other => VerifyError::Unavailable(other.to_string()),
            })?;
        let data = &reply.package.data;
        // The original's defect: a truthy reply object let every key in. Only `true` counts.
        if data["exists"] != json!(true) {
            return Err(VerifyError::Denied("no channel has this stream key".into()));
        }
        let Some(username) = data["username"].as_str().filter(|u| is_path_name(u)) else {
            return Err(VerifyError::Unavailable(
                "web-api accepted the key without naming a valid channel".into(),
            ));
        };
        let mut options = PublishOptions::default();
        options.record = true;
        options.previews = self.thumbnail;
        options.label = Some(format!("{username}/{}", new_stream_id()));
        Ok(VerifiedKey::checked(options))
    }
}

/// Whether `name` is safe as one path segment and in a URL: 1 to 32 characters of
/// `[A-Za-z0-9_-]` (usernames and stream ids are).
pub(crate) fn is_path_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `<unix seconds>-<10 random alphanumerics>`: sortable by start, unique in practice, and
/// nothing to do with the key.
fn new_stream_id() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let suffix: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(10)
        .map(char::from)
        .collect();
    format!("{seconds}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_are_fresh_and_path_safe() {
        let (a, b) = (new_stream_id(), new_stream_id());
        assert_ne!(a, b);
        for id in [a, b] {
            assert!(is_path_name(&id), "{id}");
        }
    }

    #[test]
    fn only_plain_names_are_usernames() {
        assert!(is_path_name("alice_01-x"));
        for bad in ["", "../etc", "a/b", "a b", "é", &"x".repeat(33)] {
            assert!(!is_path_name(bad), "{bad}");
        }
    }
}
