use std::{fmt, io, process::ExitStatus, time::Duration};

/// A test peer (a program or service the tests talk to) that is not available here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerMissing {
    /// The peer, as a person would name it: `ffmpeg`, `PostgreSQL`, …
    pub peer: &'static str,
    /// What was looked for and not found.
    pub reason: String,
    /// How to get it (usually: run `scripts/test`, which installs it).
    pub hint: &'static str,
}

impl fmt::Display for PeerMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is unavailable: {} ({})",
            self.peer, self.reason, self.hint
        )
    }
}

/// Everything a harness helper can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// The peer a helper needs is not on this machine; see [`crate::peer`].
    #[error("{0}")]
    PeerMissing(PeerMissing),
    /// An I/O operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What the harness was doing.
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Something did not happen within its deadline.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What was awaited, with whatever context helps to diagnose it.
        what: String,
        /// The deadline.
        after: Duration,
    },
    /// A child process ended unsuccessfully, or before it was ready.
    #[error("{program} exited with {status}; last output:\n{output}")]
    ProcessFailed {
        /// The program's name.
        program: String,
        /// How it ended.
        status: ExitStatus,
        /// The last lines it printed (stderr and stdout).
        output: String,
    },
    /// A peer said something the harness could not understand.
    #[error("{peer} answered unexpectedly: {detail}")]
    Protocol {
        /// Which peer.
        peer: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A browser operation failed; a screenshot of the page was saved when possible.
    #[error("browser: {message} (screenshot: {screenshot})")]
    Browser {
        /// Playwright's error message.
        message: String,
        /// Where the screenshot of the failing page was written, or why it could not be.
        screenshot: String,
    },
    /// A PostgreSQL statement failed.
    #[error("PostgreSQL: {0}")]
    Sql(#[from] sqlx::Error),
    /// A Redis command failed.
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
}

impl HarnessError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}

/// The harness's result type.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;
