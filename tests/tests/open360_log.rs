//! open360-protocol's message log conformance suite against the real PostgreSQL.

use harness::{PgSchema, peer};
use open360_protocol::log::{SqlLog, conformance};

#[tokio::test]
async fn the_postgres_log_passes_the_conformance_suite() {
    let Some(schema) = peer(PgSchema::create().await) else {
        return;
    };
    let log = SqlLog::open(schema.url()).await.expect("opened");
    conformance::run(&log).await;
    schema.drop_schema().await.expect("dropped");
}
