//! The suite on the memory store and on SQLite, plus what only those stores have.

use crate::web::store::{
    DEFAULT_SQLITE_FILE, MemoryWebStore, SqlWebStore, User, Vod, WebStore, WebStoreError,
};

#[tokio::test]
async fn memory_store() {
    super::run(&MemoryWebStore::new()).await;
}

#[tokio::test]
async fn the_memory_store_debug_shows_no_secret() {
    let store = MemoryWebStore::new();
    let mut user = super::user("Secretive", 1);
    user.stream_key = Some(super::key(99));
    store.create_user(&user).await.expect("created");
    let debug = format!("{store:?}");
    assert!(!debug.contains(&super::key(99)), "{debug}");
    assert!(!debug.contains("argon2"), "{debug}");
}

#[tokio::test]
async fn sqlite_store() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("web.sqlite3").display());
    let store = SqlWebStore::open(&url).await.expect("opened");
    assert_eq!(store.backend(), "sqlite");
    super::run(&store).await;
    store.close().await;
}

#[tokio::test]
async fn sqlite_data_survives_a_reopen() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // The directory does not exist yet: it is created with the file.
    let path = dir.path().join("data").join(DEFAULT_SQLITE_FILE);
    let store = SqlWebStore::open_sqlite(&path).await.expect("opened");
    let mut user: User = super::user("Keeper", 42);
    user.stream_key = Some(super::key(7));
    store.create_user(&user).await.expect("created");
    let settings = super::settings("Kept «title»", &["b", "a"], "Dir");
    store
        .update_settings("keeper", &settings)
        .await
        .expect("updated");
    store.increment_views("keeper").await.expect("counted");
    let vod = Vod {
        started_at_ms: 5,
        ..Vod::new("Keeper", "s1")
    };
    store.add_vod(&vod).await.expect("added");
    let channel = store.channel("keeper").await.expect("read");
    store.close().await;
    assert!(path.is_file());

    let url = format!("sqlite:{}", path.display());
    let reopened = SqlWebStore::open(&url).await.expect("reopened");
    assert_eq!(reopened.user("KEEPER").await.expect("read"), Some(user));
    assert_eq!(reopened.channel("keeper").await.expect("read"), channel);
    assert_eq!(
        reopened
            .user_by_stream_key(&super::key(7))
            .await
            .expect("read"),
        Some("Keeper".to_owned())
    );
    assert_eq!(reopened.vods("keeper", 5).await.expect("read"), [vod]);
    reopened.close().await;
}

#[tokio::test]
async fn urls_other_than_postgres_and_sqlite_files_are_refused() {
    for url in [
        "mysql://localhost/web",
        "sqlite::memory:",
        "sqlite://",
        "web.db",
        "",
    ] {
        match SqlWebStore::open(url).await {
            Err(WebStoreError::Database(sqlx::Error::Configuration(_))) => {}
            other => panic!("{url}: expected a configuration error, got {other:?}"),
        }
    }
}
