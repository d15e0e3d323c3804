/// An invalid hub, external API or chat configuration.
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

/// Everything Open360's services can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The chat's Redis could not be reached or refused a command.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The RTMP ingest failed.
    #[error("ingest: {0}")]
    Ingest(#[from] media_ingest::Error),
    /// The web service's store failed.
    #[error(transparent)]
    WebStore(#[from] crate::web::store::WebStoreError),
    /// A socket or file operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
