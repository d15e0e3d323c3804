/// An invalid [`CastawayConfig`](crate::CastawayConfig).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting is outside the range it must lie in.
    #[error("{setting} must be {requirement}, got {value}")]
    OutOfRange {
        /// The setting's name, as in the config struct.
        setting: &'static str,
        /// What it must be.
        requirement: &'static str,
        /// What it was.
        value: String,
    },
}

/// Everything the relay can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// A socket or file operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The livestream store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The cluster's Redis could not be reached.
    #[error("cluster (Redis): {0}")]
    Cluster(#[from] redis::RedisError),
}
