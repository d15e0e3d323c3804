//! Rooms spanning servers: what the registry tells the others, and what it makes of theirs.

use super::*;

const OTHER: u64 = 7;

fn clustered() -> Scene {
    let mut scene = Scene::new();
    scene.registry.enable_cluster();
    scene
}

fn id(n: u8) -> ClientId {
    ClientId::parse(&format!("{n:032x}")).expect("an id")
}

fn announced(out: &[Outgoing]) -> Vec<(ClientId, Option<String>)> {
    out.iter()
        .filter_map(|a| match a {
            Outgoing::Announce {
                client, username, ..
            } => Some((*client, username.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn local_clients_are_announced_as_they_join_rename_and_leave() {
    let mut scene = clustered();
    let slug = scene.room("Across", None);
    let now = scene.at(0);
    let bill = scene.registry.enter(&slug, None, now).expect("entered");
    let connected = scene
        .registry
        .connect(&slug, &bill, now)
        .expect("connected");
    assert_eq!(
        announced(&connected.outgoing),
        [(bill, Some("Major Tom".to_owned()))]
    );
    let renamed = scene.send(
        &bill,
        json!({ "receiver": "ground control", "type": "profile", "data": { "username": "Bill" } }),
        1,
    );
    assert_eq!(announced(&renamed), [(bill, Some("Bill".to_owned()))]);
    assert_eq!(
        scene.registry.local_clients(),
        [(Arc::from(slug.as_str()), bill, "Bill".to_owned())]
    );
    let bye = scene.send(
        &bill,
        json!({ "receiver": "ground control", "type": "bye" }),
        2,
    );
    assert_eq!(announced(&bye), [(bill, None)]);

    // Reaped clients are announced gone too, dropped ones as well as connected ones.
    let (ted, connection) = scene.join(&slug, 10);
    scene.registry.disconnect(&ted, connection);
    let reaped = scene.tick(100);
    assert_eq!(announced(&reaped), [(ted, None)]);
}

#[test]
fn remote_clients_hold_seats_show_in_room_info_and_receive_through_forward() {
    let mut scene = clustered();
    let slug = scene.room("Across", Some(2));
    let (bill, _) = scene.join(&slug, 0);
    let ted = id(1);
    let joined = scene
        .registry
        .remote_join(&slug, ted, "Ted", OTHER, scene.at(1));
    scene.check(&joined);
    assert_eq!(
        joined,
        room_info(&[bill], &slug, &[(&bill, "Major Tom"), (&ted, "Ted")])
    );
    assert_eq!(scene.registry.stats().remote, 1);
    // Both seats are taken: a third visitor is refused.
    assert_eq!(
        scene.registry.enter(&slug, None, scene.at(1)),
        Err(EntryError::RoomFull)
    );

    let direct = scene.send(
        &bill,
        json!({ "receiver": ted.as_str(), "type": "text", "data": "hi" }),
        2,
    );
    let expected: Envelope = serde_json::from_value(
        json!({ "sender": bill.as_str(), "receiver": ted.as_str(), "type": "text", "data": "hi" }),
    )
    .expect("an envelope");
    assert_eq!(
        direct,
        [Outgoing::Forward {
            room: Arc::from(slug.as_str()),
            to: Some(ted),
            envelope: Arc::new(expected),
        }]
    );
    let all = scene.send(
        &bill,
        json!({ "receiver": "room", "type": "text", "data": "all" }),
        3,
    );
    assert_eq!(kinds_to(&all, &bill), ["text"]);
    assert!(matches!(
        all.last(),
        Some(Outgoing::Forward { to: None, .. })
    ));

    // What Ted's server relays reaches Bill only if it is for him or the room.
    let from_ted: Envelope = serde_json::from_value(
        json!({ "sender": ted.as_str(), "receiver": bill.as_str(), "type": "answer", "data": {} }),
    )
    .expect("an envelope");
    let from_ted = Arc::new(from_ted);
    assert_eq!(
        scene
            .registry
            .remote_deliver(&slug, Some(&bill), Arc::clone(&from_ted)),
        [Outgoing::Send {
            to: bill,
            envelope: Arc::clone(&from_ted)
        }]
    );
    assert!(
        scene
            .registry
            .remote_deliver("another-room", Some(&bill), Arc::clone(&from_ted))
            .is_empty()
    );
    assert!(
        scene
            .registry
            .remote_deliver(&slug, Some(&id(9)), from_ted)
            .is_empty()
    );

    // Ted leaves on his server: Bill hears his bye and the room's new state.
    let left = scene.registry.remote_leave(&ted, json!(1234), scene.at(4));
    scene.check(&left);
    let mut expected = vec![to(
        &bill,
        json!({ "sender": ted.as_str(), "receiver": bill.as_str(), "type": "bye", "data": 1234 }),
    )];
    expected.extend(room_info(&[bill], &slug, &[(&bill, "Major Tom")]));
    assert_eq!(left, expected);
    // A local client is never removed by another server's word.
    assert!(
        scene
            .registry
            .remote_leave(&bill, json!(0), scene.at(5))
            .is_empty()
    );
    assert!(scene.registry.is_client(&slug, &bill));
}

#[test]
fn a_silent_server_takes_its_clients_with_it_and_remote_clients_are_not_reaped_here() {
    let mut scene = clustered();
    let slug = scene.room("Across", None);
    let (bill, _) = scene.join(&slug, 0);
    for n in 1..=2 {
        let out = scene
            .registry
            .remote_join(&slug, id(n), "", OTHER, scene.at(0));
        scene.check(&out);
    }
    let out = scene
        .registry
        .remote_join(&slug, id(3), "Elsewhere", OTHER + 1, scene.at(0));
    scene.check(&out);
    // Bill keeps talking; the remote clients are their servers' to reap.
    for secs in [60, 120] {
        scene.send(
            &bill,
            json!({ "receiver": "ground control", "type": "pong" }),
            secs,
        );
        let out = scene.tick(secs);
        assert!(out.is_empty(), "{out:?}");
    }
    let gone = scene
        .registry
        .remote_server_gone(OTHER, json!(1), scene.at(121));
    scene.check(&gone);
    assert_eq!(kinds_to(&gone, &bill), ["bye", "bye", "room-info"]);
    assert_eq!(
        scene.registry.stats().remote,
        1,
        "the other server's client stays"
    );
}

#[test]
fn a_client_that_moved_to_another_server_is_taken_as_remote_without_a_bye() {
    let mut scene = clustered();
    let slug = scene.room("Across", None);
    let (bill, _) = scene.join(&slug, 0);
    let (ted, connection) = scene.join(&slug, 0);
    scene.registry.disconnect(&ted, connection);
    let moved = scene
        .registry
        .remote_join(&slug, ted, "Ted", OTHER, scene.at(1));
    scene.check(&moved);
    assert_eq!(kinds_to(&moved, &bill), ["room-info"]);
    assert_eq!(scene.registry.stats().remote, 1);
    assert_eq!(scene.registry.stats().dropped, 0);
    // A connected client is this server's, whatever another says.
    assert!(
        scene
            .registry
            .remote_join(&slug, bill, "Impostor", OTHER, scene.at(1))
            .is_empty()
    );
}
