//! The `ice-servers` a client gets: the STUN entry, and a TURN entry with coturn REST
//! credentials (username `<unix expiry>:<client id>`, credential
//! base64(HMAC-SHA1(secret, username))), each with the seed's `kind`.

use crate::{IceConfig, TurnConfig};
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};

/// Which kind of server an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IceKind {
    /// A STUN server.
    Stun,
    /// A TURN server, with credentials.
    Turn,
}

/// One entry of `ice-servers`, as `RTCPeerConnection` takes it (plus `kind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IceServer {
    /// The server's URLs.
    pub urls: Vec<String>,
    /// The TURN username.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The TURN credential.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// `stun` or `turn`.
    pub kind: IceKind,
}

/// The servers for `client_id` at `now`: the STUN entry when STUN URLs are configured, the
/// TURN entry (credentials valid until `now` + the TTL) when a TURN server is.
pub fn ice_servers(config: &IceConfig, client_id: &str, now: SystemTime) -> Vec<IceServer> {
    let mut servers = Vec::with_capacity(2);
    if !config.stun_urls.is_empty() {
        servers.push(IceServer {
            urls: config.stun_urls.clone(),
            username: None,
            credential: None,
            kind: IceKind::Stun,
        });
    }
    if let Some(turn) = &config.turn {
        let (username, credential) = turn_credentials(turn, client_id, now);
        servers.push(IceServer {
            urls: turn.urls.clone(),
            username: Some(username),
            credential: Some(credential),
            kind: IceKind::Turn,
        });
    }
    servers
}

/// coturn REST credentials for `client_id`, valid until `now` + the TTL.
pub fn turn_credentials(turn: &TurnConfig, client_id: &str, now: SystemTime) -> (String, String) {
    let expiry = (now + turn.credential_ttl)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let username = format!("{expiry}:{client_id}");
    let credential = base64::engine::general_purpose::STANDARD.encode(hmac_sha1(
        turn.static_auth_secret.as_bytes(),
        username.as_bytes(),
    ));
    (username, credential)
}

fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod credentials {
    use super::*;
    use std::time::Duration;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// RFC 2202, section 3: the HMAC-SHA-1 test cases.
    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        let cases: [(Vec<u8>, Vec<u8>, &str); 7] = [
            (
                vec![0x0b; 20],
                b"Hi There".to_vec(),
                "b617318655057264e28bc0b6fb378c8ef146be00",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
            ),
            (
                vec![0xaa; 20],
                vec![0xdd; 50],
                "125d7342b9ac11cd91a39af48aa17b4f63f175d3",
            ),
            (
                (1..=25).collect(),
                vec![0xcd; 50],
                "4c9007f4026250c6bc8414f9bf50c86c2d7235da",
            ),
            (
                vec![0x0c; 20],
                b"Test With Truncation".to_vec(),
                "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04",
            ),
            (
                vec![0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "aa4ae5e15272d00e95705637ce8a3b55ed402112",
            ),
            (
                vec![0xaa; 80],
                b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data"
                    .to_vec(),
                "e8e99d0f45237d786d6bbaa7965c7808bbff1a91",
            ),
        ];
        for (key, data, digest) in cases {
            assert_eq!(hex(&hmac_sha1(&key, &data)), digest);
        }
    }

    #[test]
    fn turn_credentials_follow_the_coturn_rest_scheme_with_a_fixed_clock() {
        let mut turn = TurnConfig::new("turn:turn.example.com:3478", "Jefe");
        turn.credential_ttl = Duration::from_secs(6 * 3600);
        let now = UNIX_EPOCH + Duration::from_secs(1_615_912_970);
        let (username, credential) = turn_credentials(&turn, "d86f5959", now);
        assert_eq!(username, "1615934570:d86f5959", "6 h after the clock");
        let expected = base64::engine::general_purpose::STANDARD
            .encode(hmac_sha1(b"Jefe", b"1615934570:d86f5959"));
        assert_eq!(credential, expected);
        assert_eq!(credential.len(), 28, "base64 of 20 bytes");
    }

    #[test]
    fn the_entries_are_the_seeds() {
        let mut config = IceConfig::default();
        assert!(ice_servers(&config, "c", UNIX_EPOCH).is_empty());
        config.stun_urls = vec!["stun:turn.example.com:3478".into()];
        config.turn = Some(TurnConfig::new("turn:turn.example.com:3478", "secret"));
        let servers = ice_servers(&config, "d86f", UNIX_EPOCH + Duration::from_secs(100));
        let json = serde_json::to_value(&servers).expect("serializable");
        assert_eq!(
            json[0],
            serde_json::json!({ "urls": ["stun:turn.example.com:3478"], "kind": "stun" })
        );
        assert_eq!(json[1]["kind"], "turn");
        assert_eq!(json[1]["username"], "21700:d86f");
        assert!(json[1]["credential"].is_string());
    }
}
