//! Whether a test may skip when a peer is missing.
//!
//! Developers without ffmpeg or Chromium can still run `cargo test`: tests whose peer is missing
//! print why and pass as skipped. `scripts/test` and CI set `REQUIRE_PEERS=1`, which turns every
//! such absence into a failure, so a green CI run really exercised every peer.

use crate::error::{HarnessError, PeerMissing};
use std::path::{Path, PathBuf};

/// `true` when `REQUIRE_PEERS` is set to `1`, `true` or `yes`.
pub fn peers_required() -> bool {
    std::env::var("REQUIRE_PEERS")
        .map(|value| matches!(value.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        .unwrap_or(false)
}

/// Unwraps what a harness constructor found, or decides the test's fate when it found nothing.
///
/// * `Ok(value)` → `Some(value)`.
/// * A missing peer → `None` after printing why (the test should `return`), or a panic when
///   [`peers_required`].
/// * Any other error → a panic: a broken set-up is a failure, never a skip.
///
/// ```no_run
/// # async fn example() {
/// let Some(ffmpeg) = harness::peer(harness::Ffmpeg::locate()) else { return };
/// # }
/// ```
#[track_caller]
pub fn peer<T>(found: Result<T, HarnessError>) -> Option<T> {
    match decide(found, peers_required()) {
        Decision::Run(value) => Some(value),
        Decision::Skip(missing) => {
            let test = std::thread::current()
                .name()
                .unwrap_or("this test")
                .to_owned();
            eprintln!("SKIPPED {test}: {missing}");
            None
        }
        Decision::Fail(message) => panic!("{message}"),
    }
}

enum Decision<T> {
    Run(T),
    Skip(PeerMissing),
    Fail(String),
}

fn decide<T>(found: Result<T, HarnessError>, required: bool) -> Decision<T> {
    match found {
        Ok(value) => Decision::Run(value),
        Err(HarnessError::PeerMissing(missing)) if !required => Decision::Skip(missing),
        Err(HarnessError::PeerMissing(missing)) => Decision::Fail(format!(
            "{missing}; REQUIRE_PEERS is set, so a missing peer is a failure"
        )),
        Err(other) => Decision::Fail(format!("test set-up failed: {other}")),
    }
}

/// Finds an executable: the path in the environment variable `override_var` if set, else the
/// first `name` on `PATH`.
pub(crate) fn find_program(name: &str, override_var: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(override_var) {
        let path = PathBuf::from(path);
        return is_executable(&path).then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod policy {
    use super::*;

    fn missing() -> HarnessError {
        HarnessError::PeerMissing(PeerMissing {
            peer: "ffmpeg",
            reason: "not on PATH".into(),
            hint: "run scripts/test",
        })
    }

    #[test]
    fn a_found_peer_runs() {
        assert!(matches!(decide(Ok(7), false), Decision::Run(7)));
        assert!(matches!(decide(Ok(7), true), Decision::Run(7)));
    }

    #[test]
    fn a_missing_peer_skips_unless_required() {
        assert!(
            matches!(decide::<()>(Err(missing()), false), Decision::Skip(m) if m.peer == "ffmpeg")
        );
        match decide::<()>(Err(missing()), true) {
            Decision::Fail(message) => assert!(message.contains("REQUIRE_PEERS"), "{message}"),
            _ => panic!("a required peer that is missing must fail"),
        }
    }

    #[test]
    fn a_broken_setup_always_fails() {
        let broken = || HarnessError::Protocol {
            peer: "node",
            detail: "garbage".into(),
        };
        assert!(matches!(
            decide::<()>(Err(broken()), false),
            Decision::Fail(_)
        ));
        assert!(matches!(
            decide::<()>(Err(broken()), true),
            Decision::Fail(_)
        ));
    }

    #[test]
    fn programs_are_found_on_path() {
        assert!(find_program("sh", "HARNESS_NO_SUCH_OVERRIDE").is_some());
        assert!(find_program("no-such-program-here", "HARNESS_NO_SUCH_OVERRIDE").is_none());
    }
}
