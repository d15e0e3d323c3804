//! Logins, in memory (the seed's "session in-memory database"): an opaque random token in an
//! `HttpOnly`, `SameSite=Lax` cookie names a user until it expires or the user logs out.
//! Restarting the web service logs everybody out.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use std::{
    collections::{BTreeMap, HashMap},
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// The session cookie's name.
pub(crate) const COOKIE: &str = "open360_session";

/// The logins held by this process, bounded (the oldest go first).
pub(crate) struct Sessions {
    inner: Mutex<Inner>,
    ttl: Duration,
    max: usize,
}

#[derive(Default)]
struct Inner {
    by_token: HashMap<String, (String, Instant, u64)>,
    /// Creation order → token, to drop the oldest.
    order: BTreeMap<u64, String>,
    next: u64,
}

impl Sessions {
    pub(crate) fn new(ttl: Duration, max: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            ttl,
            max,
        }
    }

    /// Logs `username` in: a new token.
    pub(crate) fn create(&self, username: &str) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        // Expired logins go first, then the oldest while over the bound.
        while let Some((&serial, oldest)) = inner.order.first_key_value() {
            let expired = inner
                .by_token
                .get(oldest)
                .is_none_or(|(_, expires, _)| *expires <= now);
            if !expired && inner.by_token.len() < self.max {
                break;
            }
            let oldest = oldest.clone();
            inner.order.remove(&serial);
            inner.by_token.remove(&oldest);
        }
        let serial = inner.next;
        inner.next += 1;
        inner.order.insert(serial, token.clone());
        inner
            .by_token
            .insert(token.clone(), (username.to_owned(), now + self.ttl, serial));
        token
    }

    /// The user `token` names, if it is a live login.
    pub(crate) fn user(&self, token: &str) -> Option<String> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (username, expires, _) = inner.by_token.get(token)?;
        (*expires > Instant::now()).then(|| username.clone())
    }

    /// Logs `token` out.
    pub(crate) fn remove(&self, token: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, _, serial)) = inner.by_token.remove(token) {
            inner.order.remove(&serial);
        }
    }

    /// How long a login lasts.
    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_names_its_user_until_logged_out() {
        let sessions = Sessions::new(Duration::from_secs(60), 10);
        let token = sessions.create("alice");
        assert_eq!(token.len(), 43);
        assert_eq!(sessions.user(&token).as_deref(), Some("alice"));
        assert_eq!(sessions.user("forged"), None);
        sessions.remove(&token);
        assert_eq!(sessions.user(&token), None);
    }

    #[test]
    fn the_oldest_logins_go_beyond_the_bound() {
        let sessions = Sessions::new(Duration::from_secs(60), 2);
        let tokens: Vec<String> = (0..3).map(|i| sessions.create(&format!("u{i}"))).collect();
        assert_eq!(sessions.user(&tokens[0]), None);
        assert_eq!(sessions.user(&tokens[1]).as_deref(), Some("u1"));
        assert_eq!(sessions.user(&tokens[2]).as_deref(), Some("u2"));
    }

    #[test]
    fn an_expired_login_names_nobody() {
        let sessions = Sessions::new(Duration::ZERO, 2);
        let token = sessions.create("alice");
        assert_eq!(sessions.user(&token), None);
    }
}
