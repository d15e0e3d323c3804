/// An invalid [`CoordinatorConfig`](crate::CoordinatorConfig) or environment.
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
        /// Its value (secrets are never reported).
        value: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// A variable that another one requires is unset.
    #[error("{variable} must be set when {needed_by}")]
    MissingVariable {
        /// The missing variable.
        variable: &'static str,
        /// The setting that needs it.
        needed_by: &'static str,
    },
}

/// Everything the coordinator can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// A socket or file operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The durable store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The TLS certificate or key cannot be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// An HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(String),
}
