//! The frontend: a page to request a session, a waiting page, then the session view.
//!
//! The browser holds only its session token: opaque, signed and expiring
//! (`<expiry>.<base64url HMAC-SHA256>` over the session id, the id itself sealed inside), in
//! the page's address, never in `localStorage`. Rendering server addresses, ports and slot ids
//! reach the page only as the running session's view URL, when it is time to load it.

use super::{App, SessionState};
use axum::{
    Router,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{
        Html, IntoResponse, Redirect, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use base64::Engine as _;
use futures::StreamExt as _;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Signs and opens session tokens.
pub(crate) struct SessionKey {
    secret: Vec<u8>,
    ttl: Duration,
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl SessionKey {
    pub(crate) fn new(secret: &[u8], ttl: Duration) -> Self {
        Self {
            secret: secret.to_vec(),
            ttl,
        }
    }

    fn mac(&self, id: &str, expiry: u64) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(b"openspace session\0");
        mac.update(id.as_bytes());
        mac.update(b"\0");
        mac.update(&expiry.to_be_bytes());
        mac
    }

    /// A token for session `id`, valid for the key's lifetime from now.
    pub(crate) fn issue(&self, id: &str) -> String {
        self.issue_at(id, now_unix())
    }

    fn issue_at(&self, id: &str, now: u64) -> String {
        let expiry = now.saturating_add(self.ttl.as_secs());
        let tag = self.mac(id, expiry).finalize().into_bytes();
        // The id is sealed with a one-time pad drawn from the tag's key stream: opaque to the
        // browser, recoverable here.
        let pad = self.pad(expiry, id.len());
        let sealed: Vec<u8> = id.bytes().zip(pad).map(|(b, p)| b ^ p).collect();
        format!("{expiry}.{}.{}", B64.encode(sealed), B64.encode(tag))
    }

    fn pad(&self, expiry: u64, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut counter = 0u32;
        while out.len() < len {
            let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret)
                .expect("HMAC takes keys of any length");
            mac.update(b"openspace session pad\0");
            mac.update(&expiry.to_be_bytes());
            mac.update(&counter.to_be_bytes());
            out.extend_from_slice(&mac.finalize().into_bytes());
            counter += 1;
        }
        out.truncate(len);
        out
    }

    /// The session id a token names, if it is genuine and not expired.
    pub(crate) fn open(&self, token: &str) -> Option<String> {
        self.open_at(token, now_unix())
    }

    fn open_at(&self, token: &str, now: u64) -> Option<String> {
        let mut parts = token.splitn(3, '.');
        let expiry: u64 = parts.next()?.parse().ok()?;
        let sealed = B64.decode(parts.next()?).ok()?;
        let tag = B64.decode(parts.next()?).ok()?;
        if expiry < now || sealed.len() > 64 {
            return None;
        }
        let pad = self.pad(expiry, sealed.len());
        let id = String::from_utf8(sealed.iter().zip(pad).map(|(b, p)| b ^ p).collect()).ok()?;
        self.mac(&id, expiry).verify_slice(&tag).ok()?;
        Some(id)
    }
}

pub(crate) fn routes(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/session", post(request))
        .route("/session/{token}", get(session_page))
        .route("/session/{token}/events", get(events))
        .route("/session/{token}/end", post(end))
        .with_state(app)
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#0b1020;color:#e8ecf5}\
main{max-width:60rem;margin:auto;padding:1rem}button{font:inherit;padding:.5rem 1rem}\
iframe{width:100%;height:80vh;border:0;background:#000}";

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>{STYLE}</style></head><body><main><h1>{title}</h1>{body}</main></body></html>\n"
    ))
}

async fn index() -> Html<String> {
    page(
        "OpenSpace",
        "<p>Explore the universe in your browser: a rendering server starts an OpenSpace for you.</p>\
         <form method=\"post\" action=\"/session\"><button type=\"submit\">Start a session</button></form>",
    )
}

/// `POST /session`: places a session and sends the browser to its page.
async fn request(State(app): State<Arc<App>>) -> Response {
    match app.join().await {
        Ok(session) => {
            Redirect::to(&format!("/session/{}", app.tokens.issue(&session.id))).into_response()
        }
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            page(
                "OpenSpace",
                &format!("<p>Sorry: {error}. Try again in a minute.</p>"),
            ),
        )
            .into_response(),
    }
}

/// The waiting page, which becomes the session view when the session runs.
async fn session_page(State(app): State<Arc<App>>, Path(token): Path<String>) -> Response {
    let Some(session) = app.tokens.open(&token).and_then(|id| app.session(&id)) else {
        return (
            StatusCode::NOT_FOUND,
            page("OpenSpace", "<p>This session is over or never was.</p>"),
        )
            .into_response();
    };
    session.touch();
    let script = format!(
        "<p id=\"status\">Waiting for your OpenSpace to start…</p><div id=\"view\"></div>\
         <form method=\"post\" action=\"/session/{token}/end\"><button>End the session</button></form>\
         <script>\
         const events = new EventSource('/session/{token}/events');\
         events.addEventListener('state', (e) => {{\
           const s = JSON.parse(e.data);\
           const status = document.getElementById('status');\
           if (s.state === 'running') {{\
             status.textContent = 'Your session is running.';\
             const view = document.getElementById('view');\
             if (!view.firstChild) {{ const f = document.createElement('iframe');\
               f.src = s.url; f.allow = 'autoplay'; view.append(f); }}\
           }} else if (s.state === 'ended') {{\
             status.textContent = 'Session over: ' + s.reason; events.close();\
           }}\
         }});\
         </script>"
    );
    (
        [(header::CACHE_CONTROL, "no-store")],
        page("OpenSpace", &script),
    )
        .into_response()
}

/// Server-sent events: the session's state now and at each change (`event: state`).
async fn events(State(app): State<Arc<App>>, Path(token): Path<String>) -> Response {
    let Some(session) = app.tokens.open(&token).and_then(|id| app.session(&id)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    session.touch();
    let changes = tokio_stream_of(session.state.subscribe());
    let touched = session.clone();
    let stream = changes.map(move |state| {
        touched.touch();
        let data = serde_json::to_string(&state).unwrap_or_default();
        Ok::<_, std::convert::Infallible>(Event::default().event("state").data(data))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The state now, then each change, until the session ends.
fn tokio_stream_of(
    receiver: tokio::sync::watch::Receiver<SessionState>,
) -> impl futures::Stream<Item = SessionState> {
    futures::stream::unfold(
        (receiver, true, false),
        |(mut receiver, first, done)| async move {
            if done || (!first && receiver.changed().await.is_err()) {
                return None;
            }
            let state = receiver.borrow_and_update().clone();
            let ended = matches!(state, SessionState::Ended { .. });
            Some((state, (receiver, false, ended)))
        },
    )
}

async fn end(State(app): State<Arc<App>>, Path(token): Path<String>) -> Response {
    let Some(session) = app.tokens.open(&token).and_then(|id| app.session(&id)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    app.terminate(&session, "ended by you").await;
    Redirect::to(&format!("/session/{token}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_open_to_their_session_only_while_valid_and_hide_it() {
        let key = SessionKey::new(b"a session secret", Duration::from_secs(60));
        let id = "0123456789abcdef0123456789abcdef";
        let token = key.issue_at(id, 1_000);
        assert!(!token.contains(id), "{token}");
        assert_eq!(key.open_at(&token, 1_000), Some(id.to_owned()));
        assert_eq!(key.open_at(&token, 1_060), Some(id.to_owned()));
        assert_eq!(key.open_at(&token, 1_061), None, "expired");
        let other = SessionKey::new(b"another secret", Duration::from_secs(60));
        assert_eq!(other.open_at(&token, 1_000), None);
        let later = token.replacen("1060", "9999", 1);
        assert_eq!(key.open_at(&later, 1_000), None, "a longer life is forged");
        for broken in ["", "1.2", "x.y.z", "1060..", "1060.AAAA.AAAA"] {
            assert_eq!(key.open_at(broken, 1_000), None, "{broken:?}");
        }
    }
}
