//! Who may open a control link (an HS256 JWT in `x-control-auth-token`) and who may use the
//! commands API (`COMMANDS_API_AUTH`, compared in constant time).

use crate::{CommandsAuth, Secret, proto::LinkRole};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use subtle::ConstantTimeEq;

/// The header carrying a control link's token.
pub(crate) const CONTROL_TOKEN_HEADER: &str = "x-control-auth-token";

#[derive(serde::Deserialize)]
struct Claims {}

/// Whether `token` is an HS256 JWT signed with `secret` whose `sub` is the role's (and, when it
/// has `exp`, unexpired). No secret refuses everything (DECISIONS.md).
pub(crate) fn control_token_valid(secret: Option<&Secret>, role: LinkRole, token: &str) -> bool {
    let Some(secret) = secret.filter(|s| !s.expose().is_empty()) else {
        return false;
    };
    let mut validation = Validation::new(Algorithm::HS256);
    // The original peers send only `sub`: `exp` is optional and checked when present.
    validation.required_spec_claims.clear();
    validation.required_spec_claims.insert("sub".to_owned());
    validation.sub = Some(role.subject().to_owned());
    validation.validate_exp = true;
    validation.leeway = 5;
    let key = DecodingKey::from_secret(secret.expose().as_bytes());
    jsonwebtoken::decode::<Claims>(token, &key, &validation).is_ok()
}

/// Whether an `Authorization` header value satisfies the commands API's auth. No auth
/// configured refuses everything (as the original did).
pub(crate) fn commands_authorized(auth: Option<&CommandsAuth>, header: Option<&str>) -> bool {
    let (Some(auth), Some(header)) = (auth, header) else {
        return false;
    };
    let expected = match auth {
        CommandsAuth::Basic { user, password } => {
            let pair = format!("{user}:{}", password.expose());
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        }
        CommandsAuth::Bearer { token } => format!("Bearer {}", token.expose()),
    };
    // `ct_eq` on slices of different lengths is false without comparing contents; the length
    // of the expected value is not the secret.
    bool::from(expected.as_bytes().ct_eq(header.trim().as_bytes()))
}

#[cfg(test)]
mod tests_auth {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    fn token(alg: Algorithm, secret: &str, claims: serde_json::Value) -> String {
        encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("encoded")
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    #[test]
    fn control_tokens_must_be_hs256_with_the_role_and_the_secret() {
        let secret = Secret::new("s3cret");
        let ok = token(Algorithm::HS256, "s3cret", json!({"sub": "rtmp-control"}));
        assert!(control_token_valid(
            Some(&secret),
            LinkRole::RtmpServer,
            &ok
        ));
        assert!(
            !control_token_valid(Some(&secret), LinkRole::Encoder, &ok),
            "role"
        );
        assert!(
            !control_token_valid(None, LinkRole::RtmpServer, &ok),
            "no secret"
        );
        let empty = Secret::new("");
        assert!(!control_token_valid(
            Some(&empty),
            LinkRole::RtmpServer,
            &ok
        ));
        let wrong = token(Algorithm::HS256, "other", json!({"sub": "rtmp-control"}));
        assert!(!control_token_valid(
            Some(&secret),
            LinkRole::RtmpServer,
            &wrong
        ));
        let hs512 = token(Algorithm::HS512, "s3cret", json!({"sub": "rtmp-control"}));
        assert!(!control_token_valid(
            Some(&secret),
            LinkRole::RtmpServer,
            &hs512
        ));
        let no_sub = token(Algorithm::HS256, "s3cret", json!({}));
        assert!(!control_token_valid(
            Some(&secret),
            LinkRole::RtmpServer,
            &no_sub
        ));
        // alg: none, with the signature left off.
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"rtmp-control"}"#);
        let none = format!("{header}.{body}.");
        assert!(!control_token_valid(
            Some(&secret),
            LinkRole::RtmpServer,
            &none
        ));
        assert!(!control_token_valid(
            Some(&secret),
            LinkRole::RtmpServer,
            "garbage"
        ));
    }

    #[test]
    fn exp_is_optional_but_checked_when_present() {
        let secret = Secret::new("k");
        let live = token(
            Algorithm::HS256,
            "k",
            json!({"sub": "hls-control", "exp": now() + 60}),
        );
        assert!(control_token_valid(Some(&secret), LinkRole::Encoder, &live));
        let expired = token(
            Algorithm::HS256,
            "k",
            json!({"sub": "hls-control", "exp": now() - 600}),
        );
        assert!(!control_token_valid(
            Some(&secret),
            LinkRole::Encoder,
            &expired
        ));
    }

    #[test]
    fn commands_auth_compares_the_whole_header() {
        let bearer = CommandsAuth::Bearer {
            token: Secret::new("tok"),
        };
        assert!(commands_authorized(Some(&bearer), Some("Bearer tok")));
        assert!(!commands_authorized(Some(&bearer), Some("Bearer to")));
        assert!(!commands_authorized(Some(&bearer), Some("Bearer tok2")));
        assert!(!commands_authorized(Some(&bearer), None));
        assert!(
            !commands_authorized(None, Some("Bearer tok")),
            "unset refuses"
        );
        let basic = CommandsAuth::Basic {
            user: "Aladdin".into(),
            password: Secret::new("open sesame"),
        };
        assert!(commands_authorized(
            Some(&basic),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        ));
        assert!(!commands_authorized(
            Some(&basic),
            Some("Bearer open sesame")
        ));
    }
}
