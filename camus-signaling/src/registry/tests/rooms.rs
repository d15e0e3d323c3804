//! Rooms, entry and connection.

use super::*;

#[test]
fn slugs_come_from_names_and_collisions_are_numbered() {
    let mut scene = Scene::new();
    assert_eq!(
        scene.room("Excellent Adventure", None),
        "excellent-adventure"
    );
    assert_eq!(
        scene.room("excellent  ADVENTURE!", None),
        "excellent-adventure-2"
    );
    assert_eq!(
        scene.room("Excellent Adventure", None),
        "excellent-adventure-3"
    );
    assert_eq!(scene.room("", None), "room");
    assert_eq!(scene.room("!!!", None), "room-2");
    assert_eq!(scene.room("room 2", None), "room-2-2");
    let view = scene
        .registry
        .room("excellent-adventure-2")
        .expect("the room");
    assert_eq!(view.name, "excellent  ADVENTURE!");
}

#[test]
fn max_rooms_is_enforced_until_an_idle_room_is_deleted() {
    let config = CamusConfig {
        max_rooms: 2,
        ..CamusConfig::default()
    };
    let mut scene = Scene::with(config);
    scene.room("one", None);
    scene.room("two", None);
    let refused = scene.registry.create_room(RoomSpec::new("three"), scene.t0);
    assert_eq!(refused, Err(RoomError::TooManyRooms { limit: 2 }));
    assert_eq!(refused.map_err(|e| e.status()), Err(503));
    scene.tick(300);
    assert_eq!(scene.registry.stats().rooms, 0, "both idle 5 min");
    let at = scene.at(300);
    assert_eq!(
        scene.registry.create_room(RoomSpec::new("three"), at),
        Ok("three".to_owned())
    );
}

#[test]
fn guest_limits_default_none_and_at_most_the_room_maximum() {
    let config = CamusConfig {
        max_clients_per_room: 4,
        default_guest_limit: 3,
        ..CamusConfig::default()
    };
    let mut scene = Scene::with(config);
    for (limit, shown, seats) in [
        (None, 3, 3),
        (Some(0), 0, 4),
        (Some(2), 2, 2),
        (Some(9), 4, 4),
    ] {
        let slug = scene.room("limits", limit);
        assert_eq!(scene.registry.room(&slug).expect("room").guest_limit, shown);
        for n in 0..seats {
            scene.join(&slug, n);
        }
        let full = scene.registry.enter(&slug, None, scene.at(9));
        assert_eq!(full, Err(EntryError::RoomFull), "{limit:?}");
    }
}

#[test]
fn views_list_public_rooms_with_their_live_guests() {
    let mut scene = Scene::new();
    let spec = |name: &str, public: bool| RoomSpec {
        name: name.to_owned(),
        guest_limit: Some(5),
        public,
        password_protected: name == "locked",
    };
    for (name, public) in [("zulu", true), ("hidden", false), ("locked", true)] {
        scene
            .registry
            .create_room(spec(name, public), scene.t0)
            .expect("created");
    }
    scene.join("zulu", 1);
    let (dropped, connection) = scene.join("zulu", 1);
    scene.registry.disconnect(&dropped, connection);
    scene
        .registry
        .enter("zulu", None, scene.at(2))
        .expect("admitted");

    let public = scene.registry.public_rooms();
    let listed: Vec<(&str, usize, bool)> = public
        .iter()
        .map(|r| (r.slug.as_str(), r.guests, r.password_protected))
        .collect();
    assert_eq!(
        listed,
        [("locked", 0, true), ("zulu", 2, false)],
        "admitted is no guest"
    );
    let hidden = scene
        .registry
        .room("hidden")
        .expect("a private room is still a room");
    assert_eq!(
        (hidden.name.as_str(), hidden.guest_limit, hidden.public),
        ("hidden", 5, false)
    );
    assert_eq!(scene.registry.room("nowhere"), None);
    assert_eq!(
        scene.registry.stats(),
        Stats {
            rooms: 3,
            connected: 1,
            dropped: 1,
            admitted: 1,
            remote: 0
        }
    );
}

#[test]
fn entry_to_an_unknown_room_is_404_and_to_a_full_one_418() {
    let mut scene = Scene::new();
    let slug = scene.room("pair", Some(2));
    let unknown = scene.registry.enter("nowhere", None, scene.t0);
    assert_eq!(unknown, Err(EntryError::UnknownRoom));
    assert_eq!(EntryError::UnknownRoom.status(), 404);
    scene.join(&slug, 1);
    let (_second, _) = scene.join(&slug, 1);
    let full = scene.registry.enter(&slug, None, scene.at(2));
    assert_eq!(full, Err(EntryError::RoomFull));
    assert_eq!(EntryError::RoomFull.status(), 418);
    assert_eq!(
        EntryError::RoomFull.to_string(),
        "Guest limit already reached"
    );
}

#[test]
fn ids_are_fresh_32_hex_characters_and_a_collision_draws_again() {
    let mut scene = Scene::new();
    let slug = scene.room("ids", None);
    let a = scene
        .registry
        .enter(&slug, None, scene.t0)
        .expect("admitted");
    let b = scene
        .registry
        .enter(&slug, None, scene.t0)
        .expect("admitted");
    assert_ne!(a, b);
    assert_eq!(ClientId::parse(a.as_str()), Some(a));

    // A source that repeats itself twice, then moves on.
    fn stuttering(buffer: &mut [u8]) {
        use std::sync::atomic::{AtomicU8, Ordering};
        static CALLS: AtomicU8 = AtomicU8::new(0);
        let n = CALLS.fetch_add(1, Ordering::Relaxed);
        buffer.fill(if n < 2 { 0xab } else { n });
    }
    let mut registry = RoomRegistry::with_random(&CamusConfig::default(), stuttering);
    let slug = registry
        .create_room(RoomSpec::new("x"), scene.t0)
        .expect("room");
    let first = registry.enter(&slug, None, scene.t0).expect("admitted");
    let second = registry.enter(&slug, None, scene.t0).expect("admitted");
    assert_eq!(first.as_str(), "ab".repeat(16));
    assert_eq!(
        second.as_str(),
        "02".repeat(16),
        "the repeated draw was rejected"
    );
}

#[test]
fn connect_greets_the_client_and_sends_room_info_to_the_room() {
    let mut scene = Scene::new();
    let slug = scene.room("Excellent Adventure", None);
    let (bill, _) = scene.join(&slug, 0);
    let ted = scene
        .registry
        .enter(&slug, None, scene.t0)
        .expect("admitted");
    let connected = scene
        .registry
        .connect(&slug, &ted, scene.t0)
        .expect("connected");
    scene.check(&connected.outgoing);
    let mut expected = vec![from_gc(
        &ted,
        "greeting",
        json!("This is Ground Control to Major Tom"),
    )];
    expected.extend(room_info(
        &[bill, ted],
        "excellent-adventure",
        &[(&bill, "Major Tom"), (&ted, "Major Tom")],
    ));
    assert_eq!(connected.outgoing, expected);
}

#[test]
fn connect_refuses_unknown_rooms_and_anyone_not_a_client_of_the_room() {
    let mut scene = Scene::new();
    let here = scene.room("here", None);
    let there = scene.room("there", None);
    let (local, _) = scene.join(&here, 0);
    let (foreign, _) = scene.join(&there, 0);
    let (leaver, _) = scene.join(&here, 0);
    scene.send(
        &leaver,
        json!({ "receiver": "ground control", "type": "bye" }),
        1,
    );
    let stranger = ClientId::parse("0123456789abcdef0123456789abcdef").expect("an id");

    let connect = |scene: &mut Scene, slug: &str, id: &ClientId| {
        scene
            .registry
            .connect(slug, id, scene.t0)
            .map(|c| c.connection)
    };
    assert_eq!(
        connect(&mut scene, "nowhere", &local),
        Err(ConnectError::UnknownRoom)
    );
    for id in [foreign, leaver, stranger] {
        assert_eq!(
            connect(&mut scene, &here, &id),
            Err(ConnectError::NotAClientOfThisRoom),
            "{id}"
        );
    }
    assert_eq!(ConnectError::NotAClientOfThisRoom.status(), 403);
    assert_eq!(ConnectError::UnknownRoom.status(), 404);
    assert_eq!(ConnectError::RoomFull.status(), 418);
}

#[test]
fn the_last_seat_goes_to_the_first_to_connect() {
    let mut scene = Scene::new();
    let slug = scene.room("pair", Some(2));
    let (first, _) = scene.join(&slug, 0);
    let early = scene
        .registry
        .enter(&slug, None, scene.at(1))
        .expect("a seat is free");
    let late = scene
        .registry
        .enter(&slug, None, scene.at(1))
        .expect("a seat is free");
    assert_eq!(scene.registry.room(&slug).map(|r| r.guests), Some(1));

    let won = scene
        .registry
        .connect(&slug, &late, scene.at(2))
        .expect("the last seat");
    scene.check(&won.outgoing);
    let lost = scene.registry.connect(&slug, &early, scene.at(2));
    assert_eq!(lost.map(|c| c.connection), Err(ConnectError::RoomFull));
    assert_eq!(scene.registry.room(&slug).map(|r| r.guests), Some(2));
    scene.check(&[]);

    // The seat freed by a bye is the loser's again.
    scene.send(
        &first,
        json!({ "receiver": "ground control", "type": "bye" }),
        3,
    );
    let retry = scene
        .registry
        .connect(&slug, &early, scene.at(4))
        .expect("a seat is free");
    scene.check(&retry.outgoing);
}

#[test]
fn a_dropped_client_keeps_its_id_and_seat_until_it_reconnects() {
    let mut scene = Scene::new();
    let slug = scene.room("pair", Some(2));
    let (bill, old) = scene.join(&slug, 0);
    let (ted, _) = scene.join(&slug, 0);
    scene.registry.disconnect(&bill, old);
    scene.check(&[]);
    assert_eq!(scene.registry.stats().dropped, 1);
    assert_eq!(scene.registry.room(&slug).map(|r| r.guests), Some(2));

    // A third visitor finds the room full while Bill's seat waits for him.
    assert_eq!(
        scene.registry.enter(&slug, None, scene.at(5)),
        Err(EntryError::RoomFull)
    );
    // Bill's reloaded page enters with its cookie and gets its id back…
    assert_eq!(
        scene.registry.enter(&slug, Some(&bill), scene.at(5)),
        Ok(bill)
    );
    // … and its socket reconnects.
    let back = scene
        .registry
        .connect(&slug, &bill, scene.at(6))
        .expect("his seat");
    scene.check(&back.outgoing);
    assert_ne!(back.connection, old);
    assert_eq!(kinds_to(&back.outgoing, &bill), ["greeting", "room-info"]);
    assert_eq!(
        back.outgoing[1..],
        room_info(
            &[bill, ted],
            &slug,
            &[(&bill, "Major Tom"), (&ted, "Major Tom")]
        )[..]
    );
    assert_eq!(scene.registry.stats().dropped, 0);
}

#[test]
fn a_new_socket_takes_over_and_the_old_ones_close_is_ignored() {
    let mut scene = Scene::new();
    let slug = scene.room("tabs", None);
    let (bill, old) = scene.join(&slug, 0);
    let new = scene
        .registry
        .connect(&slug, &bill, scene.at(1))
        .expect("takes over");
    scene.check(&new.outgoing);
    scene.registry.disconnect(&bill, old);
    assert_eq!(
        scene.registry.stats().connected,
        1,
        "the late close of the old socket"
    );
    scene.registry.disconnect(&bill, new.connection);
    assert_eq!(scene.registry.stats().dropped, 1);
}

#[test]
fn a_returning_cookie_of_another_room_or_a_gone_client_gets_a_new_id() {
    let mut scene = Scene::new();
    let here = scene.room("here", None);
    let there = scene.room("there", None);
    let (foreign, _) = scene.join(&there, 0);
    let fresh = scene
        .registry
        .enter(&here, Some(&foreign), scene.t0)
        .expect("admitted");
    assert_ne!(fresh, foreign);
    // A waiting client that enters again keeps its id.
    assert_eq!(
        scene.registry.enter(&here, Some(&fresh), scene.t0),
        Ok(fresh)
    );
    assert_eq!(scene.registry.stats().admitted, 1);
}

#[test]
fn waiting_clients_are_bounded_per_room_the_oldest_giving_way() {
    let config = CamusConfig {
        max_clients_per_room: 3,
        default_guest_limit: 3,
        ..CamusConfig::default()
    };
    let mut scene = Scene::with(config);
    let slug = scene.room("crowd", None);
    let waiting: Vec<ClientId> = (0..4)
        .map(|n| {
            scene
                .registry
                .enter(&slug, None, scene.at(n))
                .expect("admitted")
        })
        .collect();
    scene.check(&[]);
    assert_eq!(scene.registry.stats().admitted, 3);
    let oldest = scene.registry.connect(&slug, &waiting[0], scene.at(5));
    assert_eq!(
        oldest.map(|c| c.connection),
        Err(ConnectError::NotAClientOfThisRoom)
    );
    for id in &waiting[1..] {
        let connected = scene
            .registry
            .connect(&slug, id, scene.at(5))
            .expect("connected");
        scene.check(&connected.outgoing);
    }
}
