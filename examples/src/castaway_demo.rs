//! Castaway's part of the demo: the relay on its own port with fixed demo tokens (there is no
//! sign-in in the demo) and one livestream ready to stream.

use castaway_relay::{
    CastawayConfig, CastawayServer, StaticTokens,
    store::{LivestreamStore, NewLivestream, SqlStore},
};
use std::{net::SocketAddr, path::Path, sync::Arc};
use tokio::sync::watch;

/// The demo's artist token (user `demo-artist`).
pub const ARTIST_TOKEN: &str = "demo-artist-token";
/// The demo's listener token (user `demo-fan`).
pub const FAN_TOKEN: &str = "demo-fan-token";

/// The running relay.
pub struct CastawayDemo {
    /// Where Socket.IO and the HTTP API listen.
    pub addr: SocketAddr,
    /// The livestream the demo artist may stream.
    pub livestream: String,
}

/// Starts the relay on `listen`, keeping livestreams in `data_dir/castaway.sqlite3`.
pub async fn start(
    listen: SocketAddr,
    data_dir: &Path,
    mut shutdown: watch::Receiver<bool>,
) -> Result<CastawayDemo, castaway_relay::Error> {
    let url = format!("sqlite://{}", data_dir.join("castaway.sqlite3").display());
    let store = Arc::new(SqlStore::open(&url).await?);
    let livestream = match store
        .list(100)
        .await?
        .into_iter()
        .find(|l| l.artist_id == "demo-artist")
    {
        Some(existing) => existing,
        None => {
            let new = NewLivestream {
                title: "Demo livestream".into(),
                description: "Stream to it with the demo artist's token.".into(),
                artist_name: "Demo Artist".into(),
            };
            store.create("demo-artist", &new).await?
        }
    };
    let tokens = StaticTokens::new()
        .allow(ARTIST_TOKEN, "demo-artist")
        .allow(FAN_TOKEN, "demo-fan");
    let mut config = CastawayConfig::default();
    config.listen = listen;
    let server = CastawayServer::bind(config, Arc::new(tokens), store).await?;
    let addr = server.local_addr()?;
    tokio::spawn(async move {
        let stopped = async move {
            let _ = shutdown.changed().await;
        };
        if let Err(error) = server.run(axum::Router::new(), stopped).await {
            tracing::error!(%error, "the Castaway relay failed");
        }
    });
    Ok(CastawayDemo {
        addr,
        livestream: livestream.id,
    })
}
