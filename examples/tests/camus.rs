//! Camus against real clients: HTTP with reqwest, signaling with the `ws` package. Together
//! they cover the original's own acceptance list (pages, room creation, entry open / password
//! right / wrong / full, ping→pong, 403 without cookie, the handlers' replies, text, broadcast,
//! bye) and the defects it had (foreign receivers, stale seats, limits).

mod camus_support;

use camus_signaling::TurnConfig;
use camus_support::{Peer, camus};
use harness::{Node, ServerProcess, WsRefusal, http, peer};
use serde_json::json;

#[tokio::test]
async fn pages_list_public_rooms_and_rooms_are_created_from_forms_and_json() {
    let camus = camus(|_| {}).await;
    let index = camus.http.get(&camus.base).send().await.expect("answered");
    assert_eq!(index.status(), 200);
    let html = index.text().await.expect("a page");
    assert!(html.contains("name=\"room_name\""), "the creation form");
    assert!(html.contains("No public rooms"), "{html}");

    let adventure = camus
        .create(&[
            ("room_name", "Excellent Adventure"),
            ("public", "Yes"),
            ("guest_limit", "5"),
        ])
        .await;
    assert_eq!(adventure, "excellent-adventure");
    let again = camus
        .create(&[("room_name", "Excellent  adventure!"), ("public", "on")])
        .await;
    assert_eq!(again, "excellent-adventure-2", "slugs are unique");
    // The original's own tests post JSON.
    let journey = camus
        .http
        .post(format!("{}/", camus.base))
        .json(&json!({ "room_name": "Bogus <Journey>", "public": false, "guest_limit": 0 }))
        .send()
        .await
        .expect("answered");
    assert_eq!(journey.status(), 307);
    assert_eq!(journey.headers()["location"], "/room/bogus-journey");

    for page in ["/", "/public"] {
        let html = camus
            .http
            .get(format!("{}{page}", camus.base))
            .send()
            .await
            .expect("answered")
            .text()
            .await
            .expect("a page");
        assert!(
            html.contains("/room/excellent-adventure\">Excellent Adventure</a>"),
            "{html}"
        );
        assert!(html.contains("/room/excellent-adventure-2\""), "{html}");
        assert!(
            !html.contains("bogus"),
            "a private room is not listed: {html}"
        );
    }
    let entry = camus.enter("bogus-journey", None, None).await;
    assert_eq!(entry.status, 200);
    assert!(
        entry.body.contains("<title>Bogus &lt;Journey&gt;</title>"),
        "{}",
        entry.body
    );
    assert!(entry.body.contains("/static/camus.js"));
    let script = camus
        .http
        .get(format!("{}/static/camus.js", camus.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );

    let nameless = camus
        .http
        .post(format!("{}/", camus.base))
        .form(&[("room_name", "  ")])
        .send()
        .await
        .expect("answered");
    assert_eq!(nameless.status(), 400);
    assert_eq!(camus.enter("no-such-room", None, None).await.status, 404);
}

#[tokio::test]
async fn entry_needs_the_password_and_a_seat_and_the_limit_holds_at_the_socket() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let camus = camus(|_| {}).await;
    let secret = camus
        .create(&[("room_name", "Secret"), ("password", "hunter2")])
        .await;
    let asked = camus.enter(&secret, None, None).await;
    assert_eq!(asked.status, 401);
    assert!(
        asked.body.contains("name=\"password\""),
        "the password form"
    );
    assert_eq!(asked.cookie, None);
    let wrong = camus.enter(&secret, Some("hunter3"), None).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Wrong password"));
    let right = camus.enter(&secret, Some("hunter2"), None).await;
    assert_eq!(right.status, 200);
    let set_cookie = right.set_cookie.expect("a cookie");
    assert!(
        set_cookie.contains(&format!("Path=/room/{secret}")) && set_cookie.contains("HttpOnly"),
        "{set_cookie}"
    );
    // A returning client needs no password again.
    let back = camus.enter(&secret, None, right.cookie.as_deref()).await;
    assert_eq!((back.status, back.cookie), (200, right.cookie));

    // Two seats. Three visitors enter while seats are free; only two sockets get one.
    let pair = camus
        .create(&[("room_name", "Pair"), ("guest_limit", "2")])
        .await;
    let first = camus.cookie(&pair).await;
    let second = camus.cookie(&pair).await;
    let third = camus.cookie(&pair).await;
    let mut sockets = Vec::new();
    for cookie in [&first, &second] {
        let mut ws = camus.socket(&node, &pair, Some(cookie));
        ws.opened().await.expect("ran").expect("opened");
        sockets.push(ws);
    }
    let mut late = camus.socket(&node, &pair, Some(&third));
    assert_eq!(
        late.opened().await.expect("ran"),
        Err(WsRefusal::Http {
            status: 418,
            body: "Guest limit already reached\n".into()
        })
    );
    let full = camus.enter(&pair, None, None).await;
    assert_eq!(full.status, 418);
    assert!(full.body.contains("Guest limit already reached"));
}

#[tokio::test]
async fn sockets_need_a_cookie_of_their_room() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let camus = camus(|_| {}).await;
    let room = camus.create(&[("room_name", "One")]).await;
    let other = camus.create(&[("room_name", "Two")]).await;
    let cookie = camus.cookie(&room).await;
    let refused = |status: u16, body: &str| {
        Err(WsRefusal::Http {
            status,
            body: format!("{body}\n"),
        })
    };
    let mut none = camus.socket(&node, &room, None);
    assert_eq!(
        none.opened().await.expect("ran"),
        refused(403, "Enter the room first: no client cookie")
    );
    let mut elsewhere = camus.socket(&node, &other, Some(&cookie));
    assert_eq!(
        elsewhere.opened().await.expect("ran"),
        refused(403, "Enter the room first: no client cookie"),
        "a cookie of another room"
    );
    let forged = cookie.replace('.', "x.");
    let mut forged = camus.socket(&node, &room, Some(&forged));
    assert_eq!(
        forged.opened().await.expect("ran"),
        refused(403, "Enter the room first: no client cookie")
    );
    let mut unknown = camus.socket(&node, "nowhere", Some(&cookie));
    assert_eq!(
        unknown.opened().await.expect("ran"),
        refused(404, "No such room")
    );
}

#[tokio::test]
async fn ground_control_answers_and_messages_reach_their_room_only() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let camus = camus(|config| {
        config.ice.stun_urls = vec!["stun:stun.example.com:3478".into()];
        config.ice.turn = Some(TurnConfig::new("turn:turn.example.com:3478", "north"));
    })
    .await;
    let room = camus.create(&[("room_name", "Excellent Adventure")]).await;
    let mut bill = camus.join(&node, &room).await;
    let info = bill.next().await;
    assert_eq!(
        info,
        json!({
            "sender": "ground control", "receiver": bill.id, "type": "room-info",
            "data": { "room_id": room, "clients": [{ "id": bill.id, "username": "Major Tom" }] }
        })
    );
    bill.send(
        json!({ "sender": "forged", "receiver": "ground control", "type": "ping", "data": 42 }),
    )
    .await;
    assert_eq!(
        bill.next().await,
        json!({ "sender": "ground control", "receiver": bill.id, "type": "pong", "data": 42 })
    );
    bill.send(
        json!({ "receiver": "ground control", "type": "profile", "data": { "username": "Bill" } }),
    )
    .await;
    let renamed = bill.next().await;
    assert_eq!(renamed["type"], "room-info");
    assert_eq!(renamed["data"]["clients"][0]["username"], "Bill");
    bill.send(json!({ "receiver": "ground control", "type": "get-room-info" }))
        .await;
    assert_eq!(bill.next().await["data"], renamed["data"]);
    bill.send(json!({ "receiver": "ground control", "type": "get-ice-servers" }))
        .await;
    let ice = bill.next().await;
    assert_eq!(ice["type"], "ice-servers");
    assert_eq!(
        ice["data"][0],
        json!({ "urls": ["stun:stun.example.com:3478"], "kind": "stun" })
    );
    assert_eq!(ice["data"][1]["kind"], "turn");
    let username = ice["data"][1]["username"].as_str().expect("a username");
    assert!(username.ends_with(&format!(":{}", bill.id)), "{username}");

    let mut ted = camus.join(&node, &room).await;
    for peer in [&mut ted, &mut bill] {
        let info = peer.next_of("room-info").await;
        assert_eq!(info["data"]["clients"].as_array().expect("a list").len(), 2);
    }
    // To one peer, with the sender overwritten; to the room, the sender included.
    bill.send(
        json!({ "sender": "someone else", "receiver": ted.id, "type": "text", "data": "hi Ted" }),
    )
    .await;
    assert_eq!(
        ted.next().await,
        json!({ "sender": bill.id, "receiver": ted.id, "type": "text", "data": "hi Ted" })
    );
    ted.send(json!({ "receiver": "room", "type": "text", "data": "hi all" }))
        .await;
    let ted_id = ted.id.clone();
    for peer in [&mut bill, &mut ted] {
        let heard = peer.next().await;
        assert_eq!(
            heard,
            json!({ "sender": ted_id, "receiver": "room", "type": "text", "data": "hi all" })
        );
    }

    // Not to a client of another room, nor as ground control; unknown types and bad JSON
    // are answered, and the socket stays.
    let mut stranger = camus
        .join(&node, &camus.create(&[("room_name", "Elsewhere")]).await)
        .await;
    bill.send(json!({ "receiver": stranger.id, "type": "text", "data": "psst" }))
        .await;
    let refused = bill.next().await;
    assert_eq!(refused["type"], "error");
    assert_eq!(
        refused["data"],
        format!("No connected client {} in this room", stranger.id)
    );
    bill.send(json!({ "receiver": "room", "type": "room-info", "data": {} }))
        .await;
    assert_eq!(
        bill.next().await["data"],
        "Only ground control sends room-info"
    );
    bill.send(json!({ "receiver": "ground control", "type": "dance" }))
        .await;
    assert_eq!(
        bill.next().await,
        json!({ "sender": "ground control", "receiver": bill.id, "type": "error", "data": "Unknown message type: dance" })
    );
    bill.ws.send_text("{not json").await.expect("sent");
    assert_eq!(bill.next().await["type"], "error");
    bill.send(json!({ "receiver": "ground control", "type": "ping", "data": "still here" }))
        .await;
    assert_eq!(bill.next().await["data"], "still here");
    stranger
        .send(json!({ "receiver": "ground control", "type": "ping", "data": 1 }))
        .await;
    assert_eq!(
        stranger.next_of("pong").await["data"],
        1,
        "nothing leaked to it"
    );

    // Bye: the others hear it and the new room-info; the cookie opens nothing any more.
    ted.send(json!({ "receiver": "ground control", "type": "bye", "data": 1615919897795_u64 }))
        .await;
    let bye = bill.next().await;
    assert_eq!(
        (&bye["type"], &bye["sender"]),
        (&json!("bye"), &json!(ted.id))
    );
    let info = bill.next().await;
    assert_eq!(info["type"], "room-info");
    assert_eq!(info["data"]["clients"].as_array().expect("a list").len(), 1);
    assert_eq!(
        ted.ws.expect_close().await.expect("closed"),
        (1000, "bye".into())
    );
    let mut again = camus.socket(&node, &room, Some(&ted.cookie));
    assert_eq!(
        again.opened().await.expect("ran"),
        Err(WsRefusal::Http {
            status: 403,
            body: "Not a client of this room\n".into()
        })
    );
}

#[tokio::test]
async fn oversized_and_too_fast_messages_are_refused_to_their_sender_alone() {
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let camus = camus(|config| {
        config.max_message_bytes = 2048;
        config.messages_per_second = 1;
        config.message_burst = 3;
    })
    .await;
    let room = camus.create(&[("room_name", "Limits")]).await;
    let mut bill = camus.join(&node, &room).await;
    bill.next_of("room-info").await;
    let mut ted: Peer = camus.join(&node, &room).await;
    ted.next_of("room-info").await;
    bill.next_of("room-info").await;

    let big = "x".repeat(4096);
    bill.send(json!({ "receiver": ted.id, "type": "text", "data": big }))
        .await;
    let refused = bill.next().await;
    assert_eq!(refused["type"], "error");
    assert!(
        refused["data"].as_str().expect("text").contains("2048"),
        "{refused}"
    );
    // The burst of 3 is spent (the oversized message counted); the next two are refused.
    bill.send(json!({ "receiver": ted.id, "type": "text", "data": "one" }))
        .await;
    bill.send(json!({ "receiver": ted.id, "type": "text", "data": "two" }))
        .await;
    bill.send(json!({ "receiver": ted.id, "type": "text", "data": "three" }))
        .await;
    assert_eq!(ted.next().await["data"], "one");
    assert_eq!(ted.next().await["data"], "two");
    assert_eq!(
        bill.next().await["data"],
        "Too many messages: this one was dropped"
    );
    ted.send(json!({ "receiver": bill.id, "type": "text", "data": "ted is not limited" }))
        .await;
    assert_eq!(bill.next().await["data"], "ted is not limited");
}

#[tokio::test]
async fn the_camus_binary_serves_pages_health_and_metrics_and_stops_on_sigterm() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_camus"));
    command
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("RUST_LOG", "info");
    let camus = ServerProcess::spawn(command, &["http"])
        .await
        .expect("started");
    let base = format!("http://{}", camus.addr("http").expect("announced"));
    let client = camus_support::client();
    let created = client
        .post(format!("{base}/"))
        .form(&[("room_name", "Kept"), ("public", "Yes")])
        .send()
        .await
        .expect("answered");
    assert_eq!(created.status(), 307);
    assert_eq!(
        http::get_text(&format!("{base}/healthz"))
            .await
            .expect("ok")
            .trim(),
        "ok"
    );
    let metrics = http::get_text(&format!("{base}/metrics"))
        .await
        .expect("metrics");
    assert!(metrics.contains("camus_rooms_created_total 1"), "{metrics}");
    let status = camus
        .terminate(std::time::Duration::from_secs(10))
        .await
        .expect("stopped");
    assert!(status.success(), "{status}");
    assert!(data.path().join("camus.sqlite3").exists());
    assert!(data.path().join("cookie-secret").exists());

    // Restarted on the same data: the room is still there.
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_camus"));
    command
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path());
    let camus = ServerProcess::spawn(command, &["http"])
        .await
        .expect("restarted");
    let base = format!("http://{}", camus.addr("http").expect("announced"));
    let index = http::get_text(&format!("{base}/public"))
        .await
        .expect("a page");
    assert!(index.contains("/room/kept\">Kept</a>"), "{index}");
    drop(camus);
}

#[tokio::test]
async fn rooms_per_server_and_clients_per_room_are_limited() {
    let camus = camus(|config| {
        config.max_rooms = 1;
        config.max_clients_per_room = 2;
        config.default_guest_limit = 0;
    })
    .await;
    let room = camus.create(&[("room_name", "Only")]).await;
    let refused = camus
        .http
        .post(format!("{}/", camus.base))
        .form(&[("room_name", "One too many")])
        .send()
        .await
        .expect("answered");
    assert_eq!(refused.status(), 503);
    assert!(
        refused
            .text()
            .await
            .expect("a page")
            .contains("holds 1 rooms already"),
        "the limit is said"
    );
    // No guest limit, yet the server's cap of 2 clients per room holds: at the door, and at
    // the socket for a visitor who entered while a seat was free.
    let Some(node) = peer(Node::locate()) else {
        return;
    };
    let first = camus.cookie(&room).await;
    let second = camus.cookie(&room).await;
    let mut open = Vec::new();
    let mut ws = camus.socket(&node, &room, Some(&first));
    ws.opened().await.expect("ran").expect("opened");
    open.push(ws);
    let third = camus.cookie(&room).await;
    let mut ws = camus.socket(&node, &room, Some(&second));
    ws.opened().await.expect("ran").expect("opened");
    open.push(ws);
    assert_eq!(camus.enter(&room, None, None).await.status, 418);
    let mut late = camus.socket(&node, &room, Some(&third));
    assert_eq!(
        late.opened().await.expect("ran"),
        Err(WsRefusal::Http {
            status: 418,
            body: "Guest limit already reached\n".into()
        })
    );
}
