//! Signaling tokens: "the holder may REGISTER peer id N until T".
//!
//! The original signaling server let any client REGISTER any id, so anyone could take an
//! instance's place and receive its browser's offer. Here a REGISTER must carry a token for
//! its id, made with a secret shared by the supervisor (which hands the instance of slot `n` a
//! token for peer `n`), the backend (which hands the browser a token for peer `100 + n`) and
//! the signaling server, which [`verify`]s it.
//!
//! A token is `<peer_id>.<expires_unix>.<mac>`: the peer id and the expiry (Unix seconds) in
//! decimal, then the base64url (no padding) HMAC-SHA256, keyed with the secret, of
//! `openspace-signaling-token/v1:<peer_id>:<expires_unix>`. The prefix keeps a MAC made with
//! the same secret for another purpose from ever passing as a token. A token is a bearer
//! credential: whoever holds it may register its id until it expires, so hand it over only on
//! channels as private as the secret.
//!
//! ```
//! use openspace_supervisor::token::{self, TokenError};
//!
//! let secret = b"a secret of sixteen bytes or more";
//! let token = token::issue(secret, 100, 1_700_000_600);
//! assert_eq!(token::verify(secret, &token, 100, 1_700_000_000), Ok(()));
//! assert_eq!(
//!     token::verify(secret, &token, 0, 1_700_000_000),
//!     Err(TokenError::WrongPeer { token_peer: 100, wanted: 0 })
//! );
//! assert!(matches!(
//!     token::verify(secret, &token, 100, 1_700_000_600),
//!     Err(TokenError::Expired { .. })
//! ));
//! ```

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::{SystemTime, UNIX_EPOCH};

/// What every MAC'd message starts with (domain separation).
const DOMAIN: &str = "openspace-signaling-token/v1";
/// The longest token read: two decimal `u64`s, two dots and a 43-character MAC fit well under.
pub const MAX_TOKEN_CHARS: usize = 128;
/// Bytes in an HMAC-SHA256.
const MAC_BYTES: usize = 32;

/// Why a token does not let its holder register a peer id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not `<peer_id>.<expires_unix>.<mac>` in canonical form.
    #[error("the token is malformed")]
    Malformed,
    /// The MAC does not match: forged, altered, or made with another secret.
    #[error("the token is invalid")]
    BadSignature,
    /// A genuine token, for another peer id.
    #[error("the token is for peer {token_peer}, not {wanted}")]
    WrongPeer {
        /// The id the token was issued for.
        token_peer: u32,
        /// The id its holder asked for.
        wanted: u32,
    },
    /// A genuine token, expired.
    #[error("the token expired")]
    Expired {
        /// When it expired (Unix seconds).
        expired_unix: u64,
    },
}

/// A token that lets its holder register `peer_id` until `expires_unix` (Unix seconds,
/// exclusive).
pub fn issue(secret: &[u8], peer_id: u32, expires_unix: u64) -> String {
    let mac = mac_of(secret, peer_id, expires_unix)
        .finalize()
        .into_bytes();
    format!(
        "{peer_id}.{expires_unix}.{}",
        URL_SAFE_NO_PAD.encode(&mac[..])
    )
}

/// Checks that `token` lets its holder register `peer_id` at `now_unix` (Unix seconds).
///
/// The MAC is checked (in constant time) before anything the token claims is believed, so
/// [`TokenError::WrongPeer`] and [`TokenError::Expired`] are only ever reported for genuine
/// tokens.
pub fn verify(secret: &[u8], token: &str, peer_id: u32, now_unix: u64) -> Result<(), TokenError> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(peer), Some(expiry), Some(mac), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let token_peer = canonical_number::<u32>(peer)?;
    let expires_unix = canonical_number::<u64>(expiry)?;
    let mac = URL_SAFE_NO_PAD
        .decode(mac)
        .map_err(|_| TokenError::Malformed)?;
    if mac.len() != MAC_BYTES {
        return Err(TokenError::Malformed);
    }
    mac_of(secret, token_peer, expires_unix)
        .verify_slice(&mac)
        .map_err(|_| TokenError::BadSignature)?;
    if token_peer != peer_id {
        return Err(TokenError::WrongPeer {
            token_peer,
            wanted: peer_id,
        });
    }
    if now_unix >= expires_unix {
        return Err(TokenError::Expired {
            expired_unix: expires_unix,
        });
    }
    Ok(())
}

/// `at` in whole Unix seconds (0 for a time before 1970).
pub fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

fn mac_of(secret: &[u8], peer_id: u32, expires_unix: u64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(format!("{DOMAIN}:{peer_id}:{expires_unix}").as_bytes());
    mac
}

/// A decimal number written the one way [`issue`] writes it: digits only, no sign, no
/// leading zero. Anything else is refused, so one token has one spelling.
fn canonical_number<T: std::str::FromStr>(text: &str) -> Result<T, TokenError> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let canonical = text == "0" || !text.starts_with('0');
    if !(digits && canonical) {
        return Err(TokenError::Malformed);
    }
    text.parse().map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"sixteen-plus-bytes-of-secret";
    const NOW: u64 = 1_750_000_000;

    #[test]
    fn a_token_verifies_for_its_peer_until_it_expires() {
        for peer in [0, 1, 100, 102, u32::MAX] {
            let token = issue(SECRET, peer, NOW + 60);
            assert_eq!(verify(SECRET, &token, peer, NOW), Ok(()), "{token}");
            assert_eq!(verify(SECRET, &token, peer, NOW + 59), Ok(()));
        }
    }

    #[test]
    fn the_wrong_peer_is_refused() {
        let token = issue(SECRET, 100, NOW + 60);
        assert_eq!(
            verify(SECRET, &token, 0, NOW),
            Err(TokenError::WrongPeer {
                token_peer: 100,
                wanted: 0
            })
        );
        assert_eq!(
            verify(SECRET, &issue(SECRET, 0, NOW + 60), 100, NOW),
            Err(TokenError::WrongPeer {
                token_peer: 0,
                wanted: 100
            })
        );
    }

    #[test]
    fn an_expired_token_is_refused() {
        let token = issue(SECRET, 1, NOW);
        assert_eq!(
            verify(SECRET, &token, 1, NOW),
            Err(TokenError::Expired { expired_unix: NOW })
        );
        assert_eq!(
            verify(SECRET, &token, 1, NOW + 3600),
            Err(TokenError::Expired { expired_unix: NOW })
        );
        assert_eq!(verify(SECRET, &token, 1, NOW - 1), Ok(()));
    }

    #[test]
    fn forged_and_altered_tokens_are_refused() {
        let token = issue(SECRET, 1, NOW + 60);
        let other_secret = issue(b"another secret of sixteen bytes", 1, NOW + 60);
        assert_eq!(
            verify(SECRET, &other_secret, 1, NOW),
            Err(TokenError::BadSignature)
        );
        // The claims changed, the MAC kept: a longer life, another peer.
        let mac = token.rsplit('.').next().expect("three parts");
        for forged in [
            format!("1.{}.{mac}", NOW + 7200),
            format!("0.{}.{mac}", NOW + 60),
        ] {
            assert_eq!(
                verify(SECRET, &forged, 0, NOW),
                Err(TokenError::BadSignature),
                "{forged}"
            );
            assert_eq!(
                verify(SECRET, &forged, 1, NOW),
                Err(TokenError::BadSignature),
                "{forged}"
            );
        }
        // One bit of the MAC flipped.
        let mut bytes = URL_SAFE_NO_PAD.decode(mac).expect("base64url");
        bytes[7] ^= 1;
        let flipped = format!("1.{}.{}", NOW + 60, URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(
            verify(SECRET, &flipped, 1, NOW),
            Err(TokenError::BadSignature)
        );
        // An empty secret makes different MACs from a real one.
        assert_eq!(
            verify(SECRET, &issue(b"", 1, NOW + 60), 1, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let token = issue(SECRET, 1, NOW + 60);
        let mac = token.rsplit('.').next().expect("three parts");
        let expiry = NOW + 60;
        let malformed = [
            String::new(),
            "garbage".into(),
            "1.2".into(),
            format!("{token}.extra"),
            format!("+1.{expiry}.{mac}"),
            format!("01.{expiry}.{mac}"),
            format!("1.0{expiry}.{mac}"),
            format!("-1.{expiry}.{mac}"),
            format!("1 .{expiry}.{mac}"),
            format!("4294967296.{expiry}.{mac}"),
            format!("1.{expiry}.{mac}="),
            format!("1.{expiry}.{mac}AA"),
            format!("1.{expiry}.not base64!"),
            format!("1.{expiry}."),
            format!("1.{expiry}.{}", "A".repeat(200)),
            "é.1.2".into(),
        ];
        for bad in malformed {
            assert_eq!(
                verify(SECRET, &bad, 1, NOW),
                Err(TokenError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn tokens_have_one_spelling_and_fit_the_limit() {
        let token = issue(SECRET, u32::MAX, u64::MAX);
        assert!(token.len() <= MAX_TOKEN_CHARS, "{}", token.len());
        assert_eq!(token, issue(SECRET, u32::MAX, u64::MAX));
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
            "URL- and header-safe: {token}"
        );
    }

    #[test]
    fn unix_seconds_reads_the_wall_clock() {
        use std::time::Duration;
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_millis(1500)), 1);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), 0);
    }
}
