//! The behaviour every [`WebStore`] must have, as one suite that each implementation runs
//! (`conformance` feature; the PostgreSQL run lives in the workspace's `tests` crate).
//!
//! There is no way to delete, so each check works on usernames of its own and, where it lists
//! channels, on a directory or tags of its own.

mod listings;
#[cfg(test)]
mod suites;

use super::{Channel, ChannelSettings, LiveState, User, WebStore, WebStoreError};
use futures::future::join_all;
use listings::{channels_are_listed_in_order_and_filtered, vods_are_newest_first_and_per_user};

/// Runs every check on `store`, which must be empty. Panics on the first failure.
pub async fn run(store: &dyn WebStore) {
    users_round_trip_with_every_field(store).await;
    a_taken_username_is_refused_ignoring_case(store).await;
    of_racing_creations_of_one_username_exactly_one_wins(store).await;
    stream_keys_are_replaced_and_never_shared(store).await;
    settings_round_trip(store).await;
    live_since_is_kept_within_one_stream(store).await;
    viewer_counts_only_move_forward(store).await;
    racing_views_are_all_counted(store).await;
    channels_are_listed_in_order_and_filtered(store).await;
    vods_are_newest_first_and_per_user(store).await;
}

/// A PHC string shaped like an argon2 hash (the store never checks it).
fn hash(seed: &str) -> String {
    format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ${seed}SGFzaGhhc2hoYXNo")
}

fn user(username: &str, created_at_ms: i64) -> User {
    User {
        username: username.to_owned(),
        password_hash: hash(username),
        stream_key: None,
        created_at_ms,
    }
}

/// A 32-character stream key, distinct for each `n`.
fn key(n: u32) -> String {
    format!("Key{n:08}abcdefghijklmnopqrstu")
}

async fn create(store: &dyn WebStore, username: &str) {
    store
        .create_user(&user(username, 1_000))
        .await
        .unwrap_or_else(|e| panic!("created {username}: {e}"));
}

async fn channel(store: &dyn WebStore, username: &str) -> Channel {
    store
        .channel(username)
        .await
        .expect("read")
        .unwrap_or_else(|| panic!("{username}'s channel"))
}

async fn users_round_trip_with_every_field(store: &dyn WebStore) {
    assert_eq!(store.user("nobody").await.expect("read"), None);
    assert_eq!(store.channel("nobody").await.expect("read"), None);
    let full = User {
        username: "Ada_Lovelace-1".into(),
        password_hash: hash("ada"),
        stream_key: Some(key(1)),
        created_at_ms: 1_700_000_000_123,
    };
    let plain = user("plain", -5);
    store.create_user(&full).await.expect("created");
    store.create_user(&plain).await.expect("created");
    for name in ["Ada_Lovelace-1", "ada_lovelace-1", "ADA_LOVELACE-1"] {
        assert_eq!(
            store.user(name).await.expect("read").as_ref(),
            Some(&full),
            "{name}: found ignoring case, with the name as signed up"
        );
    }
    assert_eq!(store.user("plain").await.expect("read"), Some(plain));
    assert_eq!(
        store.user("Ada").await.expect("read"),
        None,
        "no prefix match"
    );

    let fresh = channel(store, "ADA_lovelace-1").await;
    assert_eq!(fresh.username, "Ada_Lovelace-1");
    assert_eq!(fresh.settings, ChannelSettings::default());
    assert_eq!(fresh.live, LiveState::Offline);
    assert_eq!(fresh.stream_id, None);
    assert_eq!(
        (fresh.viewers, fresh.viewers_seq, fresh.total_views),
        (0, 0, 0)
    );

    let debug = format!("{full:?}");
    assert!(debug.contains("Ada_Lovelace-1"), "{debug}");
    assert!(!debug.contains(&key(1)), "the key never shows: {debug}");
    assert!(!debug.contains("argon2"), "the hash never shows: {debug}");
}

async fn a_taken_username_is_refused_ignoring_case(store: &dyn WebStore) {
    let first = user("Grace", 2_000);
    store.create_user(&first).await.expect("created");
    for name in ["Grace", "grace", "GRACE"] {
        let mut second = user(name, 3_000);
        second.stream_key = Some(key(2));
        match store.create_user(&second).await {
            Err(WebStoreError::UsernameTaken) => {}
            other => panic!("{name}: expected UsernameTaken, got {other:?}"),
        }
    }
    assert_eq!(store.user("grace").await.expect("read"), Some(first));
    assert_eq!(
        store.user_by_stream_key(&key(2)).await.expect("read"),
        None,
        "a refused sign-up keeps no key"
    );
    create(store, "Grace2").await;
}

async fn of_racing_creations_of_one_username_exactly_one_wins(store: &dyn WebStore) {
    let contenders: Vec<User> = ["racer", "Racer", "RACER", "rAcEr"]
        .iter()
        .cycle()
        .take(8)
        .enumerate()
        .map(|(n, name)| User {
            password_hash: hash(&format!("racer{n}")),
            ..user(name, 4_000)
        })
        .collect();
    let results = join_all(contenders.iter().map(|u| store.create_user(u))).await;
    let mut winners = Vec::new();
    for (n, result) in results.into_iter().enumerate() {
        match result {
            Ok(()) => winners.push(n),
            Err(WebStoreError::UsernameTaken) => {}
            Err(other) => panic!("contender {n}: {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one sign-up wins: {winners:?}");
    let stored = store.user("RaCeR").await.expect("read").expect("there");
    assert_eq!(stored, contenders[winners[0]], "the winner is stored");
    assert_eq!(channel(store, "racer").await.username, stored.username);
}

async fn stream_keys_are_replaced_and_never_shared(store: &dyn WebStore) {
    create(store, "KeyHolder").await;
    create(store, "KeyThief").await;
    let stored_key = async |name: &str| {
        let user = store.user(name).await.expect("read").expect("there");
        user.stream_key
    };
    assert_eq!(stored_key("keyholder").await, None);
    assert_eq!(
        store.user_by_stream_key(&key(10)).await.expect("read"),
        None
    );

    store
        .set_stream_key("keyholder", &key(10))
        .await
        .expect("set");
    assert_eq!(stored_key("KeyHolder").await, Some(key(10)));
    assert_eq!(
        store.user_by_stream_key(&key(10)).await.expect("read"),
        Some("KeyHolder".to_owned())
    );
    assert_eq!(
        store
            .user_by_stream_key(&key(10).to_ascii_lowercase())
            .await
            .expect("read"),
        None,
        "keys are case-sensitive"
    );

    store
        .set_stream_key("KEYHOLDER", &key(11))
        .await
        .expect("replaced");
    assert_eq!(
        store.user_by_stream_key(&key(10)).await.expect("read"),
        None,
        "the old key stops working"
    );
    assert_eq!(
        store.user_by_stream_key(&key(11)).await.expect("read"),
        Some("KeyHolder".to_owned())
    );
    store
        .set_stream_key("KeyHolder", &key(11))
        .await
        .expect("setting one's own key again is fine");

    match store.set_stream_key("KeyThief", &key(11)).await {
        Err(WebStoreError::KeyTaken) => {}
        other => panic!("expected KeyTaken, got {other:?}"),
    }
    assert_eq!(stored_key("KeyThief").await, None);
    assert_eq!(
        store.user_by_stream_key(&key(11)).await.expect("read"),
        Some("KeyHolder".to_owned())
    );
    store
        .set_stream_key("KeyThief", &key(10))
        .await
        .expect("a released key is free");

    let mut late = user("KeyLate", 5_000);
    late.stream_key = Some(key(11));
    match store.create_user(&late).await {
        Err(WebStoreError::KeyTaken) => {}
        other => panic!("a sign-up with a held key: expected KeyTaken, got {other:?}"),
    }
    assert_eq!(store.user("KeyLate").await.expect("read"), None);

    match store.set_stream_key("nobody", &key(12)).await {
        Err(WebStoreError::NoUser(name)) => assert_eq!(name, "nobody"),
        other => panic!("expected NoUser, got {other:?}"),
    }
    assert_eq!(
        store.user_by_stream_key(&key(12)).await.expect("read"),
        None
    );
}

fn settings(title: &str, tags: &[&str], directory: &str) -> ChannelSettings {
    ChannelSettings {
        title: title.to_owned(),
        description: String::new(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        directory: directory.to_owned(),
    }
}

async fn settings_round_trip(store: &dyn WebStore) {
    create(store, "Settler").await;
    let full = ChannelSettings {
        title: r#"He said "hi" — 日本語 🎥 'quoted'; DROP TABLE open360_users;--"#.into(),
        description: "line one\nline two\t\\ back\\slash %_ wildcards".into(),
        tags: vec![
            "zeta".into(),
            "alpha".into(),
            r#"Émile "q" ,]["#.into(),
            "mid".into(),
        ],
        directory: "Science & Tech".into(),
    };
    store
        .update_settings("settler", &full)
        .await
        .expect("updated");
    let read = channel(store, "SETTLER").await;
    assert_eq!(
        read.settings, full,
        "every field, tags in the owner's order"
    );
    assert_eq!(read.live, LiveState::Offline, "only the settings change");

    store
        .update_settings("Settler", &ChannelSettings::default())
        .await
        .expect("updated");
    assert_eq!(
        channel(store, "Settler").await.settings,
        ChannelSettings::default()
    );
    match store.update_settings("nobody", &full).await {
        Err(WebStoreError::NoUser(_)) => {}
        other => panic!("expected NoUser, got {other:?}"),
    }
}

async fn live_since_is_kept_within_one_stream(store: &dyn WebStore) {
    create(store, "Streamer").await;
    let state = async || {
        let c = channel(store, "Streamer").await;
        (c.live, c.stream_id, c.live_since_ms)
    };
    let s = |id: &str| Some(id.to_owned());
    store
        .set_live("streamer", LiveState::Lurking, Some("s1"), 1_000)
        .await
        .expect("set");
    assert_eq!(state().await, (LiveState::Lurking, s("s1"), 1_000));
    store
        .set_live("STREAMER", LiveState::Online, Some("s1"), 2_000)
        .await
        .expect("set");
    assert_eq!(
        state().await,
        (LiveState::Online, s("s1"), 1_000),
        "same stream: the start is kept"
    );
    store
        .set_live("Streamer", LiveState::Offline, Some("s1"), 3_000)
        .await
        .expect("set");
    assert_eq!(state().await, (LiveState::Offline, s("s1"), 1_000));
    store
        .set_live("Streamer", LiveState::Lurking, Some("s2"), 4_000)
        .await
        .expect("set");
    assert_eq!(
        state().await,
        (LiveState::Lurking, s("s2"), 4_000),
        "a new stream starts anew"
    );
    store
        .set_live("Streamer", LiveState::Offline, None, 5_000)
        .await
        .expect("set");
    assert_eq!(state().await, (LiveState::Offline, None, 5_000));
    store
        .set_live("Streamer", LiveState::Offline, None, 6_000)
        .await
        .expect("set");
    assert_eq!(state().await, (LiveState::Offline, None, 5_000));
    match store
        .set_live("nobody", LiveState::Online, Some("s9"), 1)
        .await
    {
        Err(WebStoreError::NoUser(_)) => {}
        other => panic!("expected NoUser, got {other:?}"),
    }
}

async fn viewer_counts_only_move_forward(store: &dyn WebStore) {
    create(store, "Watched").await;
    let counts = async || {
        let c = channel(store, "Watched").await;
        (c.viewers, c.viewers_seq)
    };
    assert!(store.set_viewers("watched", 10, 1).await.expect("set"));
    assert!(store.set_viewers("WATCHED", 20, 3).await.expect("set"));
    assert_eq!(counts().await, (20, 3));
    assert!(
        !store.set_viewers("Watched", 15, 2).await.expect("ignored"),
        "a late, older count is ignored"
    );
    assert!(!store.set_viewers("Watched", 5, 3).await.expect("ignored"));
    assert_eq!(counts().await, (20, 3));
    assert!(store.set_viewers("Watched", 0, 4).await.expect("set"));
    assert_eq!(counts().await, (0, 4));
    assert!(!store.set_viewers("nobody", 7, 100).await.expect("ignored"));

    // Racing counts: whatever the order they land in, the highest seq's stays.
    create(store, "Raced").await;
    let seqs: Vec<u64> = [
        7, 2, 19, 11, 4, 20, 1, 13, 8, 16, 3, 10, 5, 18, 9, 14, 6, 17, 12, 15,
    ]
    .to_vec();
    join_all(
        seqs.iter()
            .map(|&seq| store.set_viewers("Raced", seq * 100, seq)),
    )
    .await;
    let raced = channel(store, "Raced").await;
    assert_eq!((raced.viewers, raced.viewers_seq), (2_000, 20));
}

async fn racing_views_are_all_counted(store: &dyn WebStore) {
    create(store, "Popular").await;
    let results = join_all((0..50).map(|_| store.increment_views("popular"))).await;
    for result in results {
        result.expect("counted");
    }
    assert_eq!(channel(store, "Popular").await.total_views, 50);
    store.increment_views("POPULAR").await.expect("counted");
    assert_eq!(channel(store, "Popular").await.total_views, 51);
    store
        .increment_views("nobody")
        .await
        .expect("an unknown user is ignored");
}
