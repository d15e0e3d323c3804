//! Plumbing shared by every helper that runs a child process: its output is echoed to the test's
//! stderr with a prefix (so a failing test shows what the peer said) and its last lines are kept
//! for error messages.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

const TAIL_LINES: usize = 60;

/// The last lines a child printed, on any of its streams.
#[derive(Clone, Default)]
pub(crate) struct OutputTail(Arc<Mutex<VecDeque<String>>>);

impl OutputTail {
    pub(crate) fn push(&self, line: String) {
        let mut lines = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    pub(crate) fn text(&self) -> String {
        let lines = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        lines
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Reads `stream` line by line until it closes: each line is echoed as `[label] line`, kept in
/// `tail`, and handed to `on_line`.
pub(crate) fn read_lines<R>(
    stream: R,
    label: String,
    tail: OutputTail,
    mut on_line: impl FnMut(&str) + Send + 'static,
) -> tokio::task::JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[{label}] {line}");
            on_line(&line);
            tail.push(line);
        }
    })
}
