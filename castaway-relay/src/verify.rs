//! Who a client is: a [`TokenVerifier`] turns the `id-token` header into a [`VerifiedUser`],
//! the proof the relay needs to admit anyone.

use async_trait::async_trait;
use std::{collections::HashMap, fmt};

/// Proof that an ID token was checked: the user it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedUser {
    uid: String,
}

impl VerifiedUser {
    /// The proof that a token naming `uid` was checked and is valid. Call it only after
    /// checking.
    pub fn checked(uid: impl Into<String>) -> Self {
        Self { uid: uid.into() }
    }

    /// The user's id (Firebase's `uid`, the token's `sub`).
    pub fn uid(&self) -> &str {
        &self.uid
    }
}

/// Why a token was not accepted; clients are told only `Invalid id token.`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid id token: {0}")]
pub struct TokenError(pub String);

/// Checks ID tokens.
#[async_trait]
pub trait TokenVerifier: Send + Sync + 'static {
    /// The user `token` proves, or why it proves nothing.
    async fn verify(&self, token: &str) -> Result<VerifiedUser, TokenError>;
}

/// For self-hosting: HS256 tokens signed with a shared secret, with Firebase's claims checked
/// (`exp`, `aud` = the project id, `iss` = `https://securetoken.google.com/<project>`); the
/// user is `sub`, or `user_id`.
pub struct Hs256Verifier {
    key: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
}

impl fmt::Debug for Hs256Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hs256Verifier")
            .field("audience", &self.validation.aud)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct Claims {
    sub: Option<String>,
    user_id: Option<String>,
}

/// The issuer Firebase puts in a project's ID tokens.
pub fn firebase_issuer(project_id: &str) -> String {
    format!("https://securetoken.google.com/{project_id}")
}

impl Hs256Verifier {
    /// Tokens of `project_id` signed with `secret`.
    pub fn new(secret: &[u8], project_id: &str) -> Self {
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_audience(&[project_id]);
        validation.set_issuer(&[firebase_issuer(project_id)]);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        Self {
            key: jsonwebtoken::DecodingKey::from_secret(secret),
            validation,
        }
    }
}

#[async_trait]
impl TokenVerifier for Hs256Verifier {
    async fn verify(&self, token: &str) -> Result<VerifiedUser, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| TokenError(e.to_string()))?;
        let uid = data
            .claims
            .sub
            .or(data.claims.user_id)
            .filter(|uid| !uid.is_empty())
            .ok_or_else(|| TokenError("no sub or user_id".into()))?;
        Ok(VerifiedUser::checked(uid))
    }
}

/// A fixed table of tokens and their users, for tests and demos.
#[derive(Debug, Clone, Default)]
pub struct StaticTokens {
    users: HashMap<String, String>,
}

impl StaticTokens {
    /// No tokens.
    pub fn new() -> Self {
        Self::default()
    }

    /// `token` proves `uid`.
    pub fn allow(mut self, token: impl Into<String>, uid: impl Into<String>) -> Self {
        self.users.insert(token.into(), uid.into());
        self
    }
}

#[async_trait]
impl TokenVerifier for StaticTokens {
    async fn verify(&self, token: &str) -> Result<VerifiedUser, TokenError> {
        self.users
            .get(token)
            .map(VerifiedUser::checked)
            .ok_or_else(|| TokenError("unknown token".into()))
    }
}

#[cfg(test)]
mod tests_verify {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode, get_current_timestamp};
    use serde_json::json;

    fn token(claims: serde_json::Value) -> String {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(b"secret"),
        )
        .expect("encoded")
    }

    #[tokio::test]
    async fn hs256_tokens_carry_firebase_claims() {
        let verifier = Hs256Verifier::new(b"secret", "castaway-test");
        let now = get_current_timestamp();
        let good = json!({"sub": "artist-1", "aud": "castaway-test",
            "iss": "https://securetoken.google.com/castaway-test", "exp": now + 60});
        assert_eq!(
            verifier.verify(&token(good.clone())).await.map(|u| u.uid),
            Ok("artist-1".to_owned())
        );
        let mut user_id = good.clone();
        user_id["user_id"] = user_id["sub"].take();
        assert_eq!(
            verifier.verify(&token(user_id)).await.map(|u| u.uid),
            Ok("artist-1".to_owned())
        );
        for (claim, value) in [
            ("aud", json!("other-project")),
            ("iss", json!("https://securetoken.google.com/other")),
            ("exp", json!(now - 600)),
        ] {
            let mut bad = good.clone();
            bad[claim] = value;
            assert!(verifier.verify(&token(bad)).await.is_err(), "{claim}");
        }
        let mut no_exp = good;
        no_exp.as_object_mut().expect("object").remove("exp");
        assert!(
            verifier.verify(&token(no_exp)).await.is_err(),
            "exp required"
        );
        assert!(verifier.verify("not a token").await.is_err());
    }
}
