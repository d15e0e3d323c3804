/// An invalid [`CamusConfig`](crate::CamusConfig).
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
    /// An environment variable has a value that cannot be used.
    #[error("{variable}={value:?} is invalid: {reason}")]
    InvalidVariable {
        /// The variable's name.
        variable: &'static str,
        /// Its value.
        value: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
}

/// Everything the Camus server can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// Redis (for a cluster) could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// A socket or file operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
