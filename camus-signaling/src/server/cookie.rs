//! The room cookie: which client of which room a browser is, signed so it cannot be forged.
//!
//! One cookie per room (`Path=/room/<slug>`, so a browser in two rooms is two clients), named
//! [`COOKIE`], `HttpOnly` and `SameSite=Lax`, whose value is `<client id>.<mac>`: the MAC is
//! HMAC-SHA256 over the slug and the id with the server's secret, base64url. A cookie copied
//! to another room's path does not verify there.

use crate::registry::ClientId;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The cookie's name.
pub(crate) const COOKIE: &str = "camus_client";

/// Signs and checks room cookies.
#[derive(Clone)]
pub(crate) struct CookieKey {
    secret: Vec<u8>,
}

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieKey([redacted])")
    }
}

impl CookieKey {
    pub(crate) fn new(secret: &[u8]) -> Self {
        Self {
            secret: secret.to_vec(),
        }
    }

    fn mac(&self, slug: &str, id: &ClientId) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(b"camus room cookie\0");
        mac.update(slug.as_bytes());
        mac.update(b"\0");
        mac.update(id.as_str().as_bytes());
        mac
    }

    /// The cookie value for client `id` of room `slug`.
    pub(crate) fn value(&self, slug: &str, id: &ClientId) -> String {
        let tag = self.mac(slug, id).finalize().into_bytes();
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag);
        format!("{id}.{tag}")
    }

    /// The whole `Set-Cookie` header value.
    pub(crate) fn set_cookie(&self, slug: &str, id: &ClientId, secure: bool) -> String {
        let secure = if secure { "; Secure" } else { "" };
        format!(
            "{COOKIE}={}; Path=/room/{slug}; HttpOnly; SameSite=Lax{secure}",
            self.value(slug, id)
        )
    }

    /// The client id a cookie value proves for room `slug`, if its signature holds.
    pub(crate) fn verify(&self, slug: &str, value: &str) -> Option<ClientId> {
        let (id, tag) = value.split_once('.')?;
        let id = ClientId::parse(id)?;
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(tag)
            .ok()?;
        self.mac(slug, &id).verify_slice(&tag).ok()?;
        Some(id)
    }

    /// The verified client id among the `Cookie` headers of a request, for room `slug`.
    pub(crate) fn client_in(
        &self,
        slug: &str,
        headers: &axum::http::HeaderMap,
    ) -> Option<ClientId> {
        headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == COOKIE)
            .find_map(|(_, value)| self.verify(slug, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> ClientId {
        ClientId::parse(text).expect("an id")
    }

    #[test]
    fn a_cookie_verifies_for_its_room_only_and_not_once_altered() {
        let key = CookieKey::new(b"a secret of the server");
        let client = id("0123456789abcdef0123456789abcdef");
        let value = key.value("room-a", &client);
        assert_eq!(key.verify("room-a", &value), Some(client));
        assert_eq!(key.verify("room-b", &value), None, "another room");
        let other = CookieKey::new(b"another secret");
        assert_eq!(other.verify("room-a", &value), None, "another server");
        let forged = value.replacen("0123", "1123", 1);
        assert_eq!(key.verify("room-a", &forged), None, "another id");
        for broken in ["", ".", "0123456789abcdef0123456789abcdef", "zz.zz"] {
            assert_eq!(key.verify("room-a", broken), None, "{broken:?}");
        }
        let header = key.set_cookie("room-a", &client, true);
        assert!(header.starts_with(&format!("{COOKIE}={value}; Path=/room/room-a; HttpOnly")));
        assert!(header.ends_with("; Secure"));
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            format!("other=1; {COOKIE}=bad.tag; {COOKIE}={value}")
                .parse()
                .expect("a header"),
        );
        assert_eq!(key.client_in("room-a", &headers), Some(client));
    }
}
