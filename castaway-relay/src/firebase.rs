//! Firebase ID tokens: RS256, signed by one of Google's keys, published as x509 certificates
//! (a JSON object of key id → PEM) at [`GOOGLE_CERTS_URL`], cached as long as its
//! `Cache-Control: max-age` allows. Checked as Firebase documents: the key id names a current
//! key, `aud` is the project, `iss` is `https://securetoken.google.com/<project>`, `exp` is in
//! the future, `iat` and `auth_time` are not, and `sub` (the user) is not empty.

use crate::verify::{TokenError, TokenVerifier, VerifiedUser, firebase_issuer};
use async_trait::async_trait;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::{
    collections::HashMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::Mutex;

/// Where Google publishes the certificates of Firebase ID tokens.
pub const GOOGLE_CERTS_URL: &str =
    "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com";

/// How long certificates are kept without a `max-age` (and how long a file is trusted).
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);
/// Clock skew allowed on `exp`, `iat` and `auth_time`.
const LEEWAY_SECONDS: u64 = 60;

/// Where the certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertSource {
    /// Fetched over HTTPS (normally [`GOOGLE_CERTS_URL`]).
    Url(String),
    /// Read from a file of the same JSON (for machines without outside access).
    File(PathBuf),
}

/// Google's keys by key id.
type Keys = Arc<HashMap<String, DecodingKey>>;

/// Verifies Firebase ID tokens of one project.
pub struct FirebaseVerifier {
    project_id: String,
    source: CertSource,
    client: reqwest::Client,
    /// The keys, and until when they may be used without asking again.
    keys: Mutex<Option<(Keys, Instant)>>,
}

impl std::fmt::Debug for FirebaseVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirebaseVerifier")
            .field("project_id", &self.project_id)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    iat: u64,
    auth_time: Option<u64>,
}

impl FirebaseVerifier {
    /// Tokens of `project_id`, checked against the certificates from `source`.
    pub fn new(project_id: impl Into<String>, source: CertSource) -> Result<Self, TokenError> {
        // reqwest is built without a default rustls provider (one TLS stack: ring).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| TokenError(e.to_string()))?;
        Ok(Self {
            project_id: project_id.into(),
            source,
            client,
            keys: Mutex::new(None),
        })
    }

    /// The current keys; `refresh` fetches them again even if the cache is fresh (a token
    /// names a key we do not know: Google may have rotated).
    async fn keys(&self, refresh: bool) -> Result<Keys, TokenError> {
        let mut cache = self.keys.lock().await;
        if let Some((keys, until)) = &*cache
            && !refresh
            && Instant::now() < *until
        {
            return Ok(keys.clone());
        }
        let (json, max_age) =
            match &self.source {
                CertSource::Url(url) => {
                    let response =
                        self.client.get(url).send().await.map_err(|e| {
                            TokenError(format!("certificates: {}", e.without_url()))
                        })?;
                    if !response.status().is_success() {
                        return Err(TokenError(format!("certificates: {}", response.status())));
                    }
                    let max_age = response
                        .headers()
                        .get(reqwest::header::CACHE_CONTROL)
                        .and_then(|v| v.to_str().ok())
                        .and_then(max_age)
                        .unwrap_or(DEFAULT_MAX_AGE);
                    let body = response
                        .bytes()
                        .await
                        .map_err(|e| TokenError(format!("certificates: {e}")))?;
                    (body.to_vec(), max_age)
                }
                CertSource::File(path) => (
                    tokio::fs::read(path)
                        .await
                        .map_err(|e| TokenError(format!("{}: {e}", path.display())))?,
                    DEFAULT_MAX_AGE,
                ),
            };
        let pems: HashMap<String, String> =
            serde_json::from_slice(&json).map_err(|e| TokenError(format!("certificates: {e}")))?;
        let mut keys = HashMap::new();
        for (kid, pem) in pems {
            match DecodingKey::from_rsa_pem(pem.as_bytes()) {
                Ok(key) => {
                    keys.insert(kid, key);
                }
                Err(error) => tracing::warn!(%kid, %error, "unusable certificate skipped"),
            }
        }
        let keys = Arc::new(keys);
        *cache = Some((keys.clone(), Instant::now() + max_age));
        Ok(keys)
    }
}

/// `max-age=N` of a `Cache-Control` value.
fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|directive| {
        let seconds = directive.trim().strip_prefix("max-age=")?;
        seconds.parse().ok().map(Duration::from_secs)
    })
}

#[async_trait]
impl TokenVerifier for FirebaseVerifier {
    async fn verify(&self, token: &str) -> Result<VerifiedUser, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| TokenError(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError(format!("{:?} is not RS256", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| TokenError("no key id".into()))?;
        let mut keys = self.keys(false).await?;
        if !keys.contains_key(&kid) {
            keys = self.keys(true).await?;
        }
        let key = keys
            .get(&kid)
            .ok_or_else(|| TokenError(format!("unknown key id {kid}")))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[&self.project_id]);
        validation.set_issuer(&[firebase_issuer(&self.project_id)]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| TokenError(e.to_string()))?;
        let now = jsonwebtoken::get_current_timestamp() + LEEWAY_SECONDS;
        let claims = data.claims;
        if claims.iat > now || claims.auth_time.is_some_and(|t| t > now) {
            return Err(TokenError("issued in the future".into()));
        }
        if claims.sub.is_empty() {
            return Err(TokenError("empty sub".into()));
        }
        Ok(VerifiedUser::checked(claims.sub))
    }
}

#[cfg(test)]
mod tests_firebase {
    #[test]
    fn max_age_is_read_from_cache_control() {
        use std::time::Duration;
        assert_eq!(
            super::max_age("public, max-age=19774, must-revalidate, no-transform"),
            Some(Duration::from_secs(19774))
        );
        assert_eq!(super::max_age("no-cache"), None);
    }
}
