use crate::ConfigError;
use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// The relay's settings. The defaults are the original's where it had one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CastawayConfig {
    /// Where Socket.IO and the HTTP API are served. Default `0.0.0.0:3000` (the original's).
    pub listen: SocketAddr,
    /// Where the SQLite database lives. Default `./data/castaway`.
    pub data_dir: PathBuf,
    /// The largest audio chunk accepted, in bytes, over WebSocket and polling alike. Default
    /// 1 MiB (Socket.IO's default); the original client's 4 s of 128 kbps AAC is ~65 KiB.
    pub max_chunk_bytes: usize,
    /// Chunks kept for late joiners, who get them at once. Default 1.
    pub history_chunks: usize,
    /// Sustained uploads per second per streamer. Default 2 (the original client sends one
    /// every 5 s).
    pub uploads_per_second: u32,
    /// Uploads a streamer may send in a burst above the sustained rate. Default 10.
    pub upload_burst: u32,
    /// Listeners of one livestream. Default 10,000.
    pub max_listeners_per_livestream: usize,
    /// Chunks a listener may have queued; one more and it is disconnected with an `error`
    /// ("too slow"). Default 16 (80 s of the original client's audio).
    pub listener_queue_chunks: usize,
    /// How long admission (token and livestream checks) may take before the socket is refused.
    /// Default 10 s.
    pub admission_timeout: Duration,
    /// The Firebase project whose ID tokens are accepted (the original's `PROJECT_ID`).
    pub project_id: Option<String>,
    /// With a Redis URL, listeners on every node sharing it receive a streamer's chunks. The
    /// nodes must share the livestream store too (PostgreSQL, or one SQLite file on one host).
    pub redis_url: Option<String>,
    /// What the cluster's Redis keys and channel start with, so several clusters can share one
    /// Redis. Default `castaway:`.
    pub redis_prefix: String,
    /// How long a node's claim on a livestream's streamer outlives the node: when a node dies,
    /// other nodes end its livestreams' listeners, and a new streamer may start, within this.
    /// Renewed, and other nodes' leases checked, every third of it: give every node the same.
    /// Default 15 s.
    pub cluster_lease: Duration,
}

impl Default for CastawayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 3000)),
            data_dir: PathBuf::from("./data/castaway"),
            max_chunk_bytes: 1 << 20,
            history_chunks: 1,
            uploads_per_second: 2,
            upload_burst: 10,
            max_listeners_per_livestream: 10_000,
            listener_queue_chunks: 16,
            admission_timeout: Duration::from_secs(10),
            project_id: None,
            redis_url: None,
            redis_prefix: "castaway:".to_owned(),
            cluster_lease: Duration::from_secs(15),
        }
    }
}

fn ensure(
    ok: bool,
    setting: &'static str,
    requirement: &'static str,
    value: impl std::fmt::Debug,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            setting,
            requirement,
            value: format!("{value:?}"),
        })
    }
}

impl CastawayConfig {
    /// Checks every setting; the first invalid one is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        ensure(
            (1 << 10..=64 << 20).contains(&self.max_chunk_bytes),
            "max_chunk_bytes",
            "between 1 KiB and 64 MiB",
            self.max_chunk_bytes,
        )?;
        ensure(
            self.uploads_per_second > 0,
            "uploads_per_second",
            "at least 1",
            self.uploads_per_second,
        )?;
        ensure(
            self.upload_burst > 0,
            "upload_burst",
            "at least 1",
            self.upload_burst,
        )?;
        ensure(
            self.max_listeners_per_livestream > 0,
            "max_listeners_per_livestream",
            "at least 1",
            self.max_listeners_per_livestream,
        )?;
        ensure(
            self.listener_queue_chunks > 0,
            "listener_queue_chunks",
            "at least 1",
            self.listener_queue_chunks,
        )?;
        // A late joiner gets the whole history at once; it must fit the listener's queue.
        ensure(
            self.history_chunks <= self.listener_queue_chunks,
            "history_chunks",
            "at most listener_queue_chunks",
            self.history_chunks,
        )?;
        ensure(
            !self.admission_timeout.is_zero(),
            "admission_timeout",
            "more than 0",
            self.admission_timeout,
        )?;
        ensure(
            self.cluster_lease >= Duration::from_secs(1),
            "cluster_lease",
            "at least 1 s",
            self.cluster_lease,
        )?;
        if let Some(project) = &self.project_id {
            ensure(
                !project.trim().is_empty(),
                "project_id",
                "non-empty when set",
                project,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod validation {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_match_the_original() {
        let config = CastawayConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.listen.port(), 3000);
        assert_eq!(config.max_chunk_bytes, 1 << 20);
    }

    /// A setting's name, and a change that makes it invalid.
    type Breakage = (&'static str, fn(&mut CastawayConfig));

    #[test]
    fn each_bound_is_enforced() {
        let broken: &[Breakage] = &[
            ("max_chunk_bytes", |c| c.max_chunk_bytes = 0),
            ("uploads_per_second", |c| c.uploads_per_second = 0),
            ("listener_queue_chunks", |c| c.listener_queue_chunks = 0),
            ("history_chunks", |c| c.history_chunks = 17),
            ("admission_timeout", |c| {
                c.admission_timeout = Duration::ZERO
            }),
            ("project_id", |c| c.project_id = Some(" ".into())),
            ("cluster_lease", |c| {
                c.cluster_lease = Duration::from_millis(999)
            }),
        ];
        for (setting, breaks) in broken {
            let setting = *setting;
            let mut config = CastawayConfig::default();
            breaks(&mut config);
            match config.validate() {
                Err(ConfigError::OutOfRange {
                    setting: reported, ..
                }) => assert_eq!(reported, setting),
                other => panic!("{setting}: expected an error, got {other:?}"),
            }
        }
    }
}
