//! A Camus server in the test's process, and what its visitors do: create rooms and enter
//! them over HTTP, then signal over the `ws` package's WebSocket.

#![allow(dead_code)] // Each test file uses its own part.

use camus_signaling::{CamusConfig, CamusServer, MemoryStore};
use harness::{Node, WsClient};
use serde_json::{Value, json};
use std::sync::Arc;

pub(crate) const SECRET: &str = "a cookie secret of at least 32 characters";

pub(crate) struct Camus {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    _data: Option<tempfile::TempDir>,
    _stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A server on a free port, with `edit` applied to its settings.
pub(crate) async fn camus(edit: impl FnOnce(&mut CamusConfig)) -> Camus {
    camus_on(Arc::new(MemoryStore::new()), edit).await
}

/// A server keeping its rooms in `store`.
pub(crate) async fn camus_on(
    store: Arc<dyn camus_signaling::Store>,
    edit: impl FnOnce(&mut CamusConfig),
) -> Camus {
    let data = tempfile::tempdir().expect("temp dir");
    let mut config = CamusConfig::default();
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.data_dir = data.path().to_owned();
    config.cookie_secret = Some(SECRET.to_owned());
    edit(&mut config);
    let server = CamusServer::bind(config, store).await.expect("bound");
    let base = format!("http://{}", server.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(axum::Router::new(), async move {
        let _ = stopped.await;
    }));
    Camus {
        base,
        http: client(),
        _data: Some(data),
        _stop: Some(stop),
    }
}

impl Camus {
    /// A server running elsewhere (another process), at `base`.
    pub(crate) fn at(base: String) -> Self {
        Self {
            base,
            http: client(),
            _data: None,
            _stop: None,
        }
    }

    /// Stops the server (gracefully): it leaves the cluster, if in one.
    pub(crate) fn stop(&mut self) {
        if let Some(stop) = self._stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An HTTP client that shows redirects instead of following them.
pub(crate) fn client() -> reqwest::Client {
    harness::http::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client")
}

/// What entering a room gave: the status, the cookie (`name=value`) and the page.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) status: u16,
    pub(crate) cookie: Option<String>,
    pub(crate) set_cookie: Option<String>,
    pub(crate) body: String,
}

impl Camus {
    /// Creates a room from form fields; returns its slug (from the 307's `Location`).
    pub(crate) async fn create(&self, form: &[(&str, &str)]) -> String {
        let response = self
            .http
            .post(format!("{}/", self.base))
            .form(form)
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), 307, "{form:?}");
        let location = response.headers()["location"].to_str().expect("text");
        location
            .strip_prefix("/room/")
            .expect("a room's address")
            .to_owned()
    }

    /// `GET /room/<slug>` (or a `POST` of `password`), with `cookie` if given.
    pub(crate) async fn enter(
        &self,
        slug: &str,
        password: Option<&str>,
        cookie: Option<&str>,
    ) -> Entry {
        let url = format!("{}/room/{slug}", self.base);
        let mut request = match password {
            Some(password) => self.http.post(url).form(&[("password", password)]),
            None => self.http.get(url),
        };
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.expect("answered");
        let status = response.status().as_u16();
        let set_cookie = response
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().expect("text").to_owned());
        let cookie = set_cookie
            .as_deref()
            .and_then(|c| c.split(';').next())
            .map(str::to_owned);
        let body = response.text().await.expect("a body");
        Entry {
            status,
            cookie,
            set_cookie,
            body,
        }
    }

    /// Enters an open room and returns the cookie.
    pub(crate) async fn cookie(&self, slug: &str) -> String {
        let entry = self.enter(slug, None, None).await;
        assert_eq!(entry.status, 200, "{}", entry.body);
        entry.cookie.expect("a cookie")
    }

    /// A WebSocket to the room, with `cookie` if given (not yet opened).
    pub(crate) fn socket(&self, node: &Node, slug: &str, cookie: Option<&str>) -> WsClient {
        let url = format!("{}/room/{slug}/ws", self.base.replace("http://", "ws://"));
        let headers = match cookie {
            Some(cookie) => json!({ "cookie": cookie }),
            None => json!({}),
        };
        node.websocket(&url, headers).expect("client started")
    }

    /// A client of the room with its socket open, its greeting read and its id learnt.
    pub(crate) async fn join(&self, node: &Node, slug: &str) -> Peer {
        let cookie = self.cookie(slug).await;
        let mut ws = self.socket(node, slug, Some(&cookie));
        ws.opened().await.expect("ran").expect("opened");
        let greeting = next(&mut ws).await;
        assert_eq!(greeting["type"], "greeting", "{greeting}");
        let id = greeting["receiver"].as_str().expect("an id").to_owned();
        Peer { id, cookie, ws }
    }
}

/// A connected client.
pub(crate) struct Peer {
    pub(crate) id: String,
    pub(crate) cookie: String,
    pub(crate) ws: WsClient,
}

impl Peer {
    pub(crate) async fn send(&mut self, message: Value) {
        self.ws.send_text(&message.to_string()).await.expect("sent");
    }

    pub(crate) async fn next(&mut self) -> Value {
        next(&mut self.ws).await
    }

    /// The next message of `kind`, skipping others (`room-info` updates, pings).
    pub(crate) async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let message = self.next().await;
            if message["type"] == kind {
                return message;
            }
        }
    }
}

/// The next text frame, as JSON.
pub(crate) async fn next(ws: &mut WsClient) -> Value {
    let text = ws.expect_text().await.expect("a message");
    serde_json::from_str(&text).expect("JSON")
}
