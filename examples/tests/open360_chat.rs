//! Open360's chat with the official JavaScript socket.io-client 4.8, connecting as the
//! original's pages do (`?channel=&user=`), beside a fake web service on an in-process hub that
//! records the viewer counts it is told.

use harness::{Node, SocketIoClient, peer};
use open360_protocol::{Chat, ChatConfig, LocalHub, ServiceClient, Transport, issue_chat_token};
use serde_json::{Value, json};
use std::{sync::Arc, time::Duration};
use tokio::sync::watch;

const SECRET: &str = "a-chat-secret-for-the-tests";

struct Running {
    url: String,
    /// Every `setViewerCount` the web service heard, in order.
    counts: watch::Receiver<Vec<(String, u64)>>,
    /// Asks the chat questions.
    asker: ServiceClient,
    _web: ServiceClient,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn chat(edit: impl FnOnce(&mut ChatConfig)) -> Running {
    let hub: Arc<dyn Transport> = Arc::new(LocalHub::new());
    let (heard, counts) = watch::channel(Vec::new());
    let web = ServiceClient::builder("web-api")
        .on("setViewerCount", move |message| {
            let data = message.package.data;
            let room = data["username"].as_str().unwrap_or_default().to_owned();
            let count = data["count"].as_u64().unwrap_or(u64::MAX);
            heard.send_modify(|all| all.push((room, count)));
            async { Ok(Value::Null) }
        })
        .start(hub.clone());
    web.connected().await;
    let asker = ServiceClient::builder("web-external-api").start(hub.clone());
    asker.connected().await;
    let mut config = ChatConfig::default();
    config.listen = "127.0.0.1:0".parse().expect("address");
    edit(&mut config);
    let chat = Chat::bind(config, Some(hub)).await.expect("bound");
    chat.linked().await;
    let url = format!("http://{}", chat.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(chat.run(axum::Router::new(), async move {
        let _ = stopped.await;
    }));
    Running {
        url,
        counts,
        asker,
        _web: web,
        _stop: stop,
    }
}

impl Running {
    fn client(&self, node: &Node, query: &str, options: Value) -> SocketIoClient {
        node.socketio(&format!("{}/?{query}", self.url), options)
            .expect("client started")
    }

    async fn joined(&self, node: &Node, query: &str) -> SocketIoClient {
        let mut client = self.client(node, query, json!({}));
        client.connected().await.expect("connected");
        client
    }

    /// Waits until the last count told for `room` is `count`.
    async fn told(&mut self, room: &str, count: u64) {
        self.counts
            .wait_for(|all| {
                all.iter().rev().find(|(r, _)| r == room).map(|(_, c)| *c) == Some(count)
            })
            .await
            .expect("the web service is listening");
    }
}

async fn post(client: &mut SocketIoClient, text: &str) {
    client
        .emit("chat-message", vec![json!({ "message": text })])
        .await
        .expect("emitted");
}

#[tokio::test]
async fn messages_reach_their_room_escaped_and_coloured_and_anonymous_viewers_only_read() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let mut chat = chat(|_| {}).await;
    let mut ada = chat.joined(&node, "channel=ada&user=ada").await;
    let mut bob = chat.joined(&node, "channel=ada&user=bob").await;
    let mut anon = chat.joined(&node, "channel=ada&user=").await;
    let mut carol = chat.joined(&node, "user=carol").await; // the default room
    chat.told("ada", 3).await;
    chat.told("universal", 1).await;

    post(&mut ada, "<b>hi</b> & 'you'").await;
    post(&mut ada, "second").await;
    let mut colour = None;
    for reader in [&mut ada, &mut bob, &mut anon] {
        let (event, first) = reader.next_event().await.expect("delivered");
        assert_eq!(event, "chat-message");
        assert_eq!(
            first[0]["message"],
            "&lt;b&gt;hi&lt;/b&gt; &amp; &#39;you&#39;"
        );
        assert_eq!(first[0]["user"], "ada");
        let (_, second) = reader.next_event().await.expect("delivered");
        assert_eq!(second[0]["message"], "second");
        assert_eq!(
            second[0]["colour"], first[0]["colour"],
            "one colour per connection"
        );
        colour = Some(first[0]["colour"].clone());
    }
    let colour = colour.expect("seen");
    let hex = colour
        .as_str()
        .and_then(|c| c.strip_prefix('#'))
        .expect("#rrggbb");
    assert_eq!(hex.len(), 6);
    assert!(u32::from_str_radix(hex, 16).is_ok(), "{colour}");

    post(&mut anon, "let me in").await;
    let refused = anon.expect_event("chat-error").await.expect("told");
    assert_eq!(
        refused[0]["error"],
        "anonymous viewers cannot post; log in to chat"
    );

    // The other room heard nothing of this: its first event is its own message.
    post(&mut carol, "anyone?").await;
    let (event, own) = carol.next_event().await.expect("delivered");
    assert_eq!(
        (event.as_str(), own[0]["user"].as_str()),
        ("chat-message", Some("carol"))
    );

    let members = chat
        .asker
        .ask("chat-api", "members", json!({ "channel": "ada" }))
        .await
        .expect("answered");
    assert_eq!(
        members.package.data,
        json!({ "count": 3, "members": ["ada", "bob"] })
    );

    bob.close().await.expect("closed");
    chat.told("ada", 2).await;
}

#[tokio::test]
async fn the_viewer_count_is_exact_while_viewers_come_and_go_at_once() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let mut chat = chat(|_| {}).await;
    const VIEWERS: usize = 8;
    let joining: Vec<_> = (0..VIEWERS)
        .map(|n| {
            let query = if n % 2 == 0 {
                format!("channel=race&user=v{n}")
            } else {
                "channel=race".to_owned()
            };
            chat.client(&node, &query, json!({}))
        })
        .collect();
    let mut viewers = Vec::new();
    for mut viewer in joining {
        viewer.connected().await.expect("connected");
        viewers.push(viewer);
    }
    chat.told("race", VIEWERS as u64).await;
    let leaving: Vec<_> = viewers
        .into_iter()
        .map(|v| tokio::spawn(v.close()))
        .collect();
    for left in leaving {
        left.await.expect("joined").expect("closed");
    }
    chat.told("race", 0).await;
    let told: Vec<u64> = chat
        .counts
        .borrow()
        .iter()
        .filter(|(room, _)| room == "race")
        .map(|(_, count)| *count)
        .collect();
    assert_eq!(told.len(), 2 * VIEWERS, "one count per change: {told:?}");
    assert!(
        told.windows(2).all(|w| w[0].abs_diff(w[1]) == 1),
        "{told:?}"
    );
    let members = chat
        .asker
        .ask("chat-api", "members", json!({ "channel": "race" }))
        .await
        .expect("answered");
    assert_eq!(members.package.data, json!({ "count": 0, "members": [] }));
}

#[tokio::test]
async fn with_a_token_secret_a_name_needs_the_web_services_token() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let chat = chat(|c| c.token_secret = Some(SECRET.to_owned())).await;
    let ada = issue_chat_token(SECRET, "ada", Duration::from_secs(600)).expect("issued");
    let bob = issue_chat_token(SECRET, "bob", Duration::from_secs(600)).expect("issued");
    let forged = issue_chat_token("somebody-elses-secret!", "ada", Duration::from_secs(600))
        .expect("issued");
    for (query, auth, reason) in [
        (
            "channel=ada&user=ada",
            json!({}),
            "a name needs a chat token from the web service",
        ),
        (
            "channel=ada&user=ada",
            json!({ "token": forged }),
            "invalid chat token",
        ),
        (
            "channel=ada&user=ada",
            json!({ "token": bob }),
            "the chat token is for another user",
        ),
    ] {
        let mut refused = chat.client(&node, query, json!({ "auth": auth }));
        let error = refused.connected().await.expect_err("refused");
        assert!(error.to_string().contains(reason), "{query}: {error}");
    }
    let mut writer = chat.client(&node, "channel=ada", json!({ "auth": { "token": ada } }));
    writer.connected().await.expect("connected");
    let mut anonymous = chat.joined(&node, "channel=ada").await;
    post(&mut writer, "vouched for").await;
    let heard = anonymous
        .expect_event("chat-message")
        .await
        .expect("delivered");
    assert_eq!(heard[0]["user"], "ada", "the token names the user");
    post(&mut anonymous, "me too").await;
    anonymous.expect_event("chat-error").await.expect("refused");
}

#[tokio::test]
async fn over_long_and_too_fast_messages_are_refused() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let chat = chat(|c| {
        c.max_message_chars = 10;
        c.messages_per_second = 1;
        c.message_burst = 2;
    })
    .await;
    let mut ada = chat.joined(&node, "channel=ada&user=ada").await;
    for text in ["one", "eleven chars", "two", "three"] {
        post(&mut ada, text).await;
    }
    let mut answers = Vec::new();
    for _ in 0..4 {
        let (event, args) = ada.next_event().await.expect("answered");
        answers.push((event, args[0]["message"].clone(), args[0]["error"].clone()));
    }
    assert_eq!(
        answers,
        [
            ("chat-message".to_owned(), json!("one"), Value::Null),
            (
                "chat-error".to_owned(),
                Value::Null,
                json!("a message is at most 10 characters")
            ),
            ("chat-message".to_owned(), json!("two"), Value::Null),
            (
                "chat-error".to_owned(),
                Value::Null,
                json!("too fast: at most 1 messages per second")
            ),
        ]
    );
}
