//! open360-protocol's web store conformance suite against the real PostgreSQL.

use harness::{PgSchema, peer};
use open360_protocol::web::store::{SqlWebStore, User, WebStore, conformance};

#[tokio::test]
async fn the_postgres_web_store_passes_the_conformance_suite() {
    let Some(schema) = peer(PgSchema::create().await) else {
        return;
    };
    let store = SqlWebStore::open(schema.url()).await.expect("opened");
    assert_eq!(store.backend(), "postgres");
    conformance::run(&store).await;
    store.close().await;
    schema.drop_schema().await.expect("dropped");
}

#[tokio::test]
async fn web_nodes_opening_one_database_at_once_share_its_users() {
    let Some(schema) = peer(PgSchema::create().await) else {
        return;
    };
    // Two web nodes starting together: schema creation is serialised, neither fails.
    let (first, second) = tokio::join!(
        SqlWebStore::open(schema.url()),
        SqlWebStore::open(schema.url())
    );
    let (first, second) = (first.expect("opened"), second.expect("opened"));
    let user = User {
        username: "Shared".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        stream_key: Some("SharedKey0123456789abcdefghijklm".into()),
        created_at_ms: 1_000,
    };
    first.create_user(&user).await.expect("created");
    assert_eq!(second.user("shared").await.expect("read"), Some(user));
    second.increment_views("SHARED").await.expect("counted");
    let channel = first.channel("shared").await.expect("read").expect("there");
    assert_eq!(channel.total_views, 1);
    // Reopening finds the tables there already.
    let third = SqlWebStore::open(schema.url()).await.expect("reopened");
    assert_eq!(
        third
            .user_by_stream_key("SharedKey0123456789abcdefghijklm")
            .await
            .expect("read")
            .as_deref(),
        Some("Shared")
    );
    for store in [first, second, third] {
        store.close().await;
    }
    schema.drop_schema().await.expect("dropped");
}
