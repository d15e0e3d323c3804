//! Chat tokens: the web service vouches for a logged-in user's name, and the chat checks it.
//! An HS256 JWT (`sub` = the user name, `aud` = `open360-chat`, `exp`) signed with the secret
//! both services share.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const AUDIENCE: &str = "open360-chat";

/// A chat token that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid chat token: {0}")]
pub struct ChatTokenError(String);

#[derive(serde::Serialize, serde::Deserialize)]
struct Claims {
    sub: String,
    aud: String,
    exp: u64,
}

/// Signs a token naming `user`, valid for `ttl`.
pub fn issue_chat_token(secret: &str, user: &str, ttl: Duration) -> Result<String, ChatTokenError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| ChatTokenError(e.to_string()))?;
    let claims = Claims {
        sub: user.to_owned(),
        aud: AUDIENCE.to_owned(),
        exp: (now + ttl).as_secs(),
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| ChatTokenError(e.to_string()))
}

/// The user a token names, if it is ours, unexpired and for the chat.
pub fn verify_chat_token(secret: &str, token: &str) -> Result<String, ChatTokenError> {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|e| ChatTokenError(e.to_string()))?;
    if data.claims.sub.is_empty() {
        return Err(ChatTokenError("no user".into()));
    }
    Ok(data.claims.sub)
}

#[cfg(test)]
mod tokens {
    use super::*;

    const SECRET: &str = "a-chat-secret-for-tests";

    #[test]
    fn a_token_names_its_user_and_only_with_our_secret() {
        let token = issue_chat_token(SECRET, "ada", Duration::from_secs(60)).expect("issued");
        assert_eq!(verify_chat_token(SECRET, &token), Ok("ada".to_owned()));
        assert!(verify_chat_token("another-secret-entirely", &token).is_err());
        assert!(verify_chat_token(SECRET, "not.a.token").is_err());
        let mut forged = token.clone();
        forged.pop();
        assert!(verify_chat_token(SECRET, &forged).is_err());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let claims = Claims {
            sub: "ada".into(),
            aud: AUDIENCE.into(),
            exp: 1_000_000_000,
        };
        let old = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("signed");
        assert!(verify_chat_token(SECRET, &old).is_err());
    }
}
