//! The behaviour every [`Store`] must have, as one suite that each implementation runs
//! (`conformance` feature; the PostgreSQL run lives in the workspace's `tests` crate).

use super::{CreateRoomError, Store, StoredRoom, hash_password};

/// Runs every check on `store`, which must be empty. Panics on the first failure.
pub async fn run(store: &dyn Store) {
    rooms_round_trip_with_every_field(store).await;
    a_taken_slug_is_refused_and_the_room_kept(store).await;
    of_racing_creations_of_one_slug_exactly_one_wins(store).await;
    listings_are_ordered_and_limited(store).await;
    activity_only_moves_forward_and_names_idle_rooms(store).await;
    rooms_are_deleted_once(store).await;
}

fn room(slug: &str, at_ms: i64) -> StoredRoom {
    StoredRoom::new(slug, format!("Room {slug}"), at_ms)
}

/// Deletes every room, so that each check starts from an empty store.
async fn empty(store: &dyn Store) {
    for room in store.rooms(usize::MAX).await.expect("listed") {
        assert!(store.delete_room(&room.slug).await.expect("deleted"));
    }
    assert_eq!(store.room_count().await.expect("counted"), 0);
}

async fn rooms_round_trip_with_every_field(store: &dyn Store) {
    assert_eq!(
        store.room_count().await.expect("counted"),
        0,
        "starts empty"
    );
    assert_eq!(store.room("nope").await.expect("read"), None);

    let hash = hash_password("wyld stallyns");
    let full = StoredRoom {
        slug: "bill-ted-s-excellent-adventure".into(),
        name: "Bill & Ted's \"Excellent\" Adventure; DROP TABLE camus_rooms; 日本語 🎸".into(),
        password_hash: Some(hash.clone()),
        guest_limit: u32::MAX,
        public: true,
        created_at_ms: 1_700_000_000_123,
        last_active_ms: 1_700_000_000_456,
    };
    let plain = StoredRoom::new("plain", "", -5);
    store.create_room(&full).await.expect("created");
    store.create_room(&plain).await.expect("created");
    assert_eq!(store.room_count().await.expect("counted"), 2);

    let read = store.room(&full.slug).await.expect("read").expect("there");
    assert_eq!(read, full);
    assert_eq!(read.password_hash.as_deref(), Some(hash.as_str()));
    assert!(
        read.admits(Some("wyld stallyns")),
        "the hash still verifies"
    );
    assert!(!read.admits(Some("bogus")));
    assert!(!read.admits(None));
    let read = store.room("plain").await.expect("read").expect("there");
    assert_eq!(read, plain);
    assert!(!read.password_protected());
    assert!(read.admits(None));
    assert_eq!(
        store.room("PLAIN").await.expect("read"),
        None,
        "slugs are case-sensitive"
    );
    empty(store).await;
}

async fn a_taken_slug_is_refused_and_the_room_kept(store: &dyn Store) {
    let first = room("taken", 1_000);
    store.create_room(&first).await.expect("created");
    let mut second = room("taken", 2_000);
    second.name = "Someone else's".into();
    second.public = true;
    match store.create_room(&second).await {
        Err(CreateRoomError::SlugTaken { slug }) => assert_eq!(slug, "taken"),
        other => panic!("expected SlugTaken, got {other:?}"),
    }
    assert_eq!(store.room("taken").await.expect("read"), Some(first));
    assert_eq!(store.room_count().await.expect("counted"), 1);
    store
        .create_room(&room("taken-2", 2_000))
        .await
        .expect("another slug is free");
    empty(store).await;
}

async fn of_racing_creations_of_one_slug_exactly_one_wins(store: &dyn Store) {
    let contenders: Vec<StoredRoom> = (0..4)
        .map(|n| {
            let mut room = room("contested", 3_000);
            room.name = format!("contender {n}");
            room
        })
        .collect();
    let (a, b, c, d) = tokio::join!(
        store.create_room(&contenders[0]),
        store.create_room(&contenders[1]),
        store.create_room(&contenders[2]),
        store.create_room(&contenders[3]),
    );
    let mut winners = Vec::new();
    for (n, result) in [a, b, c, d].into_iter().enumerate() {
        match result {
            Ok(()) => winners.push(n),
            Err(CreateRoomError::SlugTaken { .. }) => {}
            Err(other) => panic!("contender {n}: {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one creation wins: {winners:?}");
    let stored = store.room("contested").await.expect("read").expect("there");
    assert_eq!(
        stored, contenders[winners[0]],
        "the winner's room is stored"
    );
    assert_eq!(store.room_count().await.expect("counted"), 1);
    empty(store).await;
}

async fn listings_are_ordered_and_limited(store: &dyn Store) {
    let public = |slug: &str, at_ms: i64| StoredRoom {
        public: true,
        ..room(slug, at_ms)
    };
    // Created out of order; `b-2`/`b-10`/`b10` share a millisecond (byte order: `-` < `1`).
    for room in [
        public("c", 3_000),
        room("private-newest", 9_000),
        public("b10", 2_000),
        public("a", 1_000),
        public("b-2", 2_000),
        room("private-oldest", 500),
        public("b-10", 2_000),
    ] {
        store.create_room(&room).await.expect("created");
    }
    let slugs = |rooms: Vec<StoredRoom>| -> Vec<String> {
        rooms.into_iter().map(|room| room.slug).collect()
    };
    assert_eq!(
        slugs(store.public_rooms(10).await.expect("listed")),
        ["c", "b-10", "b-2", "b10", "a"],
        "public rooms: newest first, then by slug; private ones left out"
    );
    assert_eq!(
        slugs(store.public_rooms(2).await.expect("listed")),
        ["c", "b-10"]
    );
    assert!(store.public_rooms(0).await.expect("listed").is_empty());
    assert_eq!(
        slugs(store.rooms(10).await.expect("listed")),
        [
            "private-oldest",
            "a",
            "b-10",
            "b-2",
            "b10",
            "c",
            "private-newest"
        ],
        "all rooms: oldest first, then by slug"
    );
    assert_eq!(
        slugs(store.rooms(1).await.expect("listed")),
        ["private-oldest"]
    );
    assert_eq!(store.room_count().await.expect("counted"), 7);
    empty(store).await;
}

async fn activity_only_moves_forward_and_names_idle_rooms(store: &dyn Store) {
    for room in [
        room("quiet", 1_000),
        room("busy", 1_000),
        room("new", 5_000),
    ] {
        store.create_room(&room).await.expect("created");
    }
    let last_active = async |slug: &str| {
        store
            .room(slug)
            .await
            .expect("read")
            .expect("there")
            .last_active_ms
    };
    assert!(store.touch_room("busy", 4_000).await.expect("touched"));
    assert_eq!(last_active("busy").await, 4_000);
    assert!(
        store.touch_room("busy", 3_000).await.expect("touched"),
        "an older touch still finds the room"
    );
    assert_eq!(
        last_active("busy").await,
        4_000,
        "activity never moves back"
    );
    assert!(!store.touch_room("nope", 4_000).await.expect("no room"));
    let busy = store.room("busy").await.expect("read").expect("there");
    assert_eq!(busy.created_at_ms, 1_000, "a touch keeps the creation time");

    assert_eq!(
        store.rooms_idle_since(999).await.expect("read"),
        Vec::<String>::new()
    );
    assert_eq!(
        store.rooms_idle_since(1_000).await.expect("read"),
        ["quiet"],
        "the cutoff is inclusive"
    );
    assert_eq!(
        store.rooms_idle_since(4_500).await.expect("read"),
        ["quiet", "busy"],
        "least recently active first"
    );
    assert_eq!(
        store.rooms_idle_since(i64::MAX).await.expect("read"),
        ["quiet", "busy", "new"]
    );

    assert!(
        !store
            .delete_room_if_idle("busy", 3_999)
            .await
            .expect("kept"),
        "a room touched after the cutoff survives"
    );
    assert!(store.room("busy").await.expect("read").is_some());
    assert!(
        store
            .delete_room_if_idle("busy", 4_000)
            .await
            .expect("deleted")
    );
    assert_eq!(store.room("busy").await.expect("read"), None);
    assert!(
        !store
            .delete_room_if_idle("busy", 4_000)
            .await
            .expect("gone already")
    );
    assert_eq!(
        store.rooms_idle_since(4_500).await.expect("read"),
        ["quiet"]
    );
    empty(store).await;
}

async fn rooms_are_deleted_once(store: &dyn Store) {
    store
        .create_room(&room("short-lived", 1_000))
        .await
        .expect("created");
    store
        .create_room(&room("survivor", 1_000))
        .await
        .expect("created");
    assert!(store.delete_room("short-lived").await.expect("deleted"));
    assert!(
        !store
            .delete_room("short-lived")
            .await
            .expect("gone already")
    );
    assert!(!store.delete_room("nope").await.expect("never there"));
    assert_eq!(store.room("short-lived").await.expect("read"), None);
    assert_eq!(store.room_count().await.expect("counted"), 1);
    store
        .create_room(&room("short-lived", 2_000))
        .await
        .expect("a deleted room's slug is free again");
    assert_eq!(store.room_count().await.expect("counted"), 2);
    empty(store).await;
}

#[cfg(test)]
mod tests_conformance {
    use crate::store::{MemoryStore, SqlStore, Store, StoredRoom};

    #[tokio::test]
    async fn memory_store() {
        super::run(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn sqlite_store() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("camus.sqlite3").display());
        let store = SqlStore::open(&url).await.expect("opened");
        assert_eq!(store.backend(), "sqlite");
        super::run(&store).await;
    }

    #[tokio::test]
    async fn sqlite_rooms_survive_a_restart() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // The data directory does not exist yet: it is created.
        let data_dir = dir.path().join("data").join("camus");
        let store = SqlStore::open_default(&data_dir).await.expect("opened");
        let mut room = StoredRoom::new("kept", "Kept", 1_000);
        room.password_hash = Some(crate::store::hash_password("secret"));
        store.create_room(&room).await.expect("created");
        store.close().await;
        assert!(data_dir.join("camus.sqlite3").is_file());

        // Opening again is idempotent (the table exists) and finds the room.
        let reopened = SqlStore::open(&format!(
            "sqlite://{}",
            data_dir.join("camus.sqlite3").display()
        ))
        .await
        .expect("reopened");
        let read = reopened.room("kept").await.expect("read").expect("kept");
        assert_eq!(read, room);
        assert!(read.admits(Some("secret")));
    }

    #[tokio::test]
    async fn urls_other_than_postgres_and_sqlite_files_are_refused() {
        for url in [
            "mysql://localhost/camus",
            "sqlite::memory:",
            "sqlite://",
            "",
        ] {
            let error = SqlStore::open(url).await.expect_err(url);
            assert!(
                matches!(error.0, sqlx::Error::Configuration(_)),
                "{url}: {error}"
            );
        }
    }
}
