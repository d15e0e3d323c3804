//! Ping, reap and room deletion on simulated time.

use super::*;

#[test]
fn silent_clients_are_pinged_at_30_s_then_every_20_s() {
    let mut scene = Scene::new();
    let slug = scene.room("quiet", None);
    let (bill, _) = scene.join(&slug, 0);
    let (ted, _) = scene.join(&slug, 10);
    assert_eq!(scene.tick(29), []);
    assert_eq!(scene.tick(30), [from_gc(&bill, "ping", json!(unix_ms(30)))]);
    assert_eq!(scene.tick(31), [], "pinged already");
    assert_eq!(scene.tick(40), [from_gc(&ted, "ping", json!(unix_ms(40)))]);
    assert_eq!(scene.tick(49), []);
    assert_eq!(scene.tick(50), [from_gc(&bill, "ping", json!(unix_ms(50)))]);

    // Bill's pong makes him heard: no ping until 30 s after it.
    let pong = json!({ "receiver": "ground control", "type": "pong", "data": unix_ms(50) });
    assert_eq!(scene.send(&bill, pong, 51), []);
    assert_eq!(scene.tick(60), [from_gc(&ted, "ping", json!(unix_ms(60)))]);
    assert_eq!(scene.tick(80), [from_gc(&ted, "ping", json!(unix_ms(80)))]);
    assert_eq!(scene.tick(81), [from_gc(&bill, "ping", json!(unix_ms(81)))]);
}

#[test]
fn clients_silent_90_s_are_reaped_and_the_room_is_told() {
    let mut scene = Scene::new();
    let slug = scene.room("reap", None);
    let (bill, _) = scene.join(&slug, 0);
    let (ted, _) = scene.join(&slug, 0);
    let (rufus, connection) = scene.join(&slug, 0);
    scene.registry.disconnect(&rufus, connection);
    scene.send(
        &ted,
        json!({ "receiver": "ground control", "type": "pong" }),
        61,
    );
    scene.tick(30);
    scene.tick(50);
    scene.tick(70);
    assert_eq!(kinds_to(&scene.tick(89), &bill), Vec::<String>::new());

    let out = scene.tick(90);
    let bye_from = |gone: &ClientId, receiver: &ClientId| {
        to(
            receiver,
            json!({ "sender": gone.as_str(), "receiver": receiver.as_str(), "type": "bye", "data": unix_ms(90) }),
        )
    };
    let mut expected = vec![
        from_gc(&bill, "bye", json!(unix_ms(90))),
        Outgoing::Close {
            to: bill,
            reason: CloseReason::Reaped,
        },
        bye_from(&bill, &ted),
        bye_from(&rufus, &ted),
    ];
    expected.extend(room_info(&[ted], &slug, &[(&ted, "Major Tom")]));
    assert_eq!(
        out, expected,
        "Bill (connected) and Rufus (dropped) reaped at once"
    );
    assert_eq!(
        scene.registry.stats(),
        Stats {
            rooms: 1,
            connected: 1,
            dropped: 0,
            admitted: 0,
            remote: 0
        }
    );
    for gone in [bill, rufus] {
        let refused = scene.registry.connect(&slug, &gone, scene.at(91));
        assert_eq!(
            refused.map(|c| c.connection),
            Err(ConnectError::NotAClientOfThisRoom)
        );
    }
}

#[test]
fn idle_rooms_are_deleted_after_5_min_with_their_clients() {
    let mut scene = Scene::new();
    let idle = scene.room("idle", None);
    let busy = scene.room("busy", None);
    let (bill, _) = scene.join(&busy, 0);
    // Someone admitted to the idle room keeps entering (its page reloads) but never connects.
    let waiting = scene
        .registry
        .enter(&idle, None, scene.at(0))
        .expect("admitted");
    for secs in [60, 120, 180, 240, 299] {
        assert_eq!(
            scene.registry.enter(&idle, Some(&waiting), scene.at(secs)),
            Ok(waiting)
        );
        let pong = json!({ "receiver": "ground control", "type": "pong" });
        scene.send(&bill, pong, secs);
        scene.tick(secs);
    }
    assert!(scene.registry.room(&idle).is_some());
    assert!(scene.registry.take_deleted_rooms().is_empty());
    scene.tick(300);
    assert_eq!(scene.registry.room(&idle), None, "no live client for 5 min");
    assert_eq!(scene.registry.take_deleted_rooms(), vec![idle.to_string()]);
    assert!(scene.registry.take_deleted_rooms().is_empty(), "taken once");
    assert!(scene.registry.room(&busy).is_some());
    assert_eq!(
        scene.registry.stats().admitted,
        0,
        "its waiting client went with it"
    );
    assert_eq!(
        scene.registry.enter(&idle, Some(&waiting), scene.at(300)),
        Err(EntryError::UnknownRoom)
    );
    let refused = scene.registry.connect(&idle, &waiting, scene.at(300));
    assert_eq!(
        refused.map(|c| c.connection),
        Err(ConnectError::UnknownRoom)
    );
}

#[test]
fn a_room_is_idle_from_when_its_last_live_client_left() {
    let mut scene = Scene::new();
    let slug = scene.room("emptied", None);
    let (bill, connection) = scene.join(&slug, 250);
    assert_eq!(
        scene.tick(300),
        [from_gc(&bill, "ping", json!(unix_ms(300)))]
    );
    assert!(
        scene.registry.room(&slug).is_some(),
        "Bill is in since 250 s"
    );
    scene.registry.disconnect(&bill, connection);
    assert_eq!(scene.tick(330), [], "a dropped client is not pinged");
    assert_eq!(scene.tick(339), []);
    assert_eq!(scene.registry.stats().dropped, 1);
    assert_eq!(scene.tick(340), [], "nobody left to tell");
    assert_eq!(
        scene.registry.stats().dropped,
        0,
        "reaped 90 s after his last word"
    );
    scene.tick(639);
    assert!(scene.registry.room(&slug).is_some());
    scene.tick(640);
    assert_eq!(
        scene.registry.room(&slug),
        None,
        "5 min after the reap at 340 s"
    );
}

#[test]
fn never_connected_clients_are_reaped_silently_and_free_nothing_they_never_held() {
    let config = CamusConfig {
        default_guest_limit: 2,
        ..CamusConfig::default()
    };
    let mut scene = Scene::with(config);
    let slug = scene.room("lobby", None);
    let (bill, _) = scene.join(&slug, 0);
    let ghost = scene
        .registry
        .enter(&slug, None, scene.at(10))
        .expect("admitted");
    let pong = json!({ "receiver": "ground control", "type": "pong" });
    scene.send(&bill, pong, 95);
    assert_eq!(scene.tick(99), []);
    assert_eq!(
        scene.tick(100),
        [],
        "nobody is told of a client that never joined"
    );
    assert_eq!(scene.registry.stats().admitted, 0);
    let refused = scene.registry.connect(&slug, &ghost, scene.at(100));
    assert_eq!(
        refused.map(|c| c.connection),
        Err(ConnectError::NotAClientOfThisRoom)
    );
    // The seat it never held is free for someone else.
    scene.join(&slug, 101);
}

#[test]
fn talking_keeps_a_client_alive() {
    let mut scene = Scene::new();
    let slug = scene.room("chatty", None);
    let (bill, _) = scene.join(&slug, 0);
    for secs in (25..=600).step_by(25) {
        let text = json!({ "receiver": "room", "type": "text", "data": secs });
        scene.send(&bill, text, secs);
        assert_eq!(scene.tick(secs), [], "at {secs} s");
    }
    assert_eq!(scene.registry.stats().connected, 1);
}

#[test]
fn a_restored_room_keeps_its_slug_and_starts_idle() {
    let mut scene = Scene::new();
    let spec = RoomSpec::new("Kept");
    assert!(
        scene
            .registry
            .restore_room("kept-7", spec.clone(), scene.at(0))
    );
    assert!(
        !scene.registry.restore_room("kept-7", spec, scene.at(0)),
        "taken"
    );
    let view = scene.registry.room("kept-7").expect("restored");
    assert_eq!((view.name.as_str(), view.guests), ("Kept", 0));
    scene.tick(300);
    assert_eq!(scene.registry.room("kept-7"), None, "idle since restored");
    assert_eq!(scene.registry.take_deleted_rooms(), ["kept-7"]);
}
