//! The control links' text format: the method on the first line, then `key:value` lines (keys
//! case-insensitive, in any order), then an optional blank line and a body.
//!
//! ```text
//! PUBLISH-REQUEST
//! Request-ID: 7
//! Stream-Channel: my-channel
//! Stream-Key: my-key
//! User-IP: 127.0.0.1
//! ```

use std::fmt::Write;

/// The largest message a link may carry; a larger one closes the link (DECISIONS.md).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// Header lines one message may have.
const MAX_HEADERS: usize = 64;

/// Why text is not a control message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// Nothing but white space.
    #[error("empty message")]
    Empty,
    /// The first line is not an upper-case method name.
    #[error("invalid method line {0:?}")]
    InvalidMethod(String),
    /// A header line has no `:`.
    #[error("header line without ':' {0:?}")]
    InvalidHeader(String),
    /// More than [`MAX_MESSAGE_BYTES`].
    #[error("message of {0} bytes exceeds {MAX_MESSAGE_BYTES}")]
    TooLarge(usize),
    /// More than 64 header lines.
    #[error("more than {MAX_HEADERS} header lines")]
    TooManyHeaders,
}

/// One control message, untyped: a method, headers and a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlMessage {
    method: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl ControlMessage {
    /// A message of `method` with no headers and no body.
    pub fn new(method: &str) -> Self {
        Self {
            method: method.to_owned(),
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// Adds a header (builder style).
    pub fn with(mut self, key: &str, value: impl std::fmt::Display) -> Self {
        self.headers.push((key.to_owned(), value.to_string()));
        self
    }

    /// The method, upper case (`PUBLISH-REQUEST`).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The value of header `key` (any case), trimmed; the first one if repeated.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// The body, after the blank line (empty if none).
    pub fn body(&self) -> &str {
        &self.body
    }

    /// Parses one message.
    pub fn parse(text: &str) -> Result<Self, MessageError> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(MessageError::TooLarge(text.len()));
        }
        let text = text.trim_start_matches(['\r', '\n']);
        // Headers are read line by line (a `\r` before `\n` is dropped); the body, after the
        // first blank line, is kept byte for byte.
        let mut lines = text.split_inclusive('\n');
        let method = lines
            .next()
            .map(without_line_end)
            .unwrap_or_default()
            .trim();
        if method.is_empty() {
            return Err(MessageError::Empty);
        }
        let valid_method = method.len() <= 64
            && method
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
        if !valid_method {
            return Err(MessageError::InvalidMethod(
                method.chars().take(64).collect(),
            ));
        }
        let mut headers = Vec::new();
        let mut consumed = text.len() - lines.clone().map(str::len).sum::<usize>();
        let mut body = String::new();
        for raw in lines {
            consumed += raw.len();
            let line = without_line_end(raw);
            if line.trim().is_empty() {
                body = text[consumed..].to_owned();
                break;
            }
            let (key, value) = line
                .split_once(':')
                .ok_or_else(|| MessageError::InvalidHeader(line.chars().take(64).collect()))?;
            if headers.len() == MAX_HEADERS {
                return Err(MessageError::TooManyHeaders);
            }
            headers.push((key.trim().to_owned(), value.trim().to_owned()));
        }
        Ok(Self {
            method: method.to_owned(),
            headers,
            body,
        })
    }

    /// The message as it goes on the wire (`\n` line ends).
    pub fn to_text(&self) -> String {
        let mut text = self.method.clone();
        for (key, value) in &self.headers {
            let _ = write!(text, "\n{key}: {value}");
        }
        if !self.body.is_empty() {
            let _ = write!(text, "\n\n{}", self.body);
        }
        text
    }
}

/// A line without its `\n` and a `\r` before it.
fn without_line_end(raw: &str) -> &str {
    let line = raw.strip_suffix('\n').unwrap_or(raw);
    line.strip_suffix('\r').unwrap_or(line)
}

#[cfg(test)]
mod tests_message {
    use super::*;

    #[test]
    fn headers_are_case_insensitive_in_any_order_and_trimmed() {
        let text = "PUBLISH-REQUEST\r\nstream-key:  k1 \r\nREQUEST-ID:7\r\nStream-Channel: ch\r\nUser-IP: 10.0.0.1";
        let message = ControlMessage::parse(text).expect("valid");
        assert_eq!(message.method(), "PUBLISH-REQUEST");
        assert_eq!(message.header("Request-ID"), Some("7"));
        assert_eq!(message.header("stream-key"), Some("k1"));
        assert_eq!(message.header("Stream-Channel"), Some("ch"));
        assert_eq!(message.header("missing"), None);
        assert_eq!(message.body(), "");
    }

    #[test]
    fn a_body_follows_the_blank_line() {
        let message =
            ControlMessage::parse("ERROR\nError-Code: X\n\nline one\nline: two").expect("valid");
        assert_eq!(message.body(), "line one\nline: two");
        assert_eq!(message.header("line"), None, "body lines are no headers");
    }

    #[test]
    fn the_body_is_kept_byte_for_byte() {
        // Found by the fuzz target: body lines ending in CR lost one CR per parse.
        let message =
            ControlMessage::parse("REGISTER\nCapacity: 4\n\nbody\r\r\nend\r").expect("valid");
        assert_eq!(message.body(), "body\r\r\nend\r");
        assert_eq!(ControlMessage::parse(&message.to_text()), Ok(message));
    }

    #[test]
    fn what_is_written_parses_back() {
        let message = ControlMessage::new("ENCODE-START")
            .with("Stream-Channel", "ch")
            .with("Stream-ID", "abc")
            .with("Record", true);
        let text = message.to_text();
        assert_eq!(
            text,
            "ENCODE-START\nStream-Channel: ch\nStream-ID: abc\nRecord: true"
        );
        assert_eq!(ControlMessage::parse(&text), Ok(message));
    }

    #[test]
    fn malformed_text_is_a_typed_error() {
        assert_eq!(ControlMessage::parse(" \n\n"), Err(MessageError::Empty));
        assert!(matches!(
            ControlMessage::parse("publish-request"),
            Err(MessageError::InvalidMethod(_))
        ));
        assert!(matches!(
            ControlMessage::parse("PUBLISH REQUEST"),
            Err(MessageError::InvalidMethod(_))
        ));
        assert!(matches!(
            ControlMessage::parse("HEARTBEAT\nno colon here"),
            Err(MessageError::InvalidHeader(_))
        ));
        let many: String = std::iter::once("HEARTBEAT".to_owned())
            .chain((0..65).map(|i| format!("\nk{i}: v")))
            .collect();
        assert_eq!(
            ControlMessage::parse(&many),
            Err(MessageError::TooManyHeaders)
        );
        let huge = format!("HEARTBEAT\n\n{}", "x".repeat(MAX_MESSAGE_BYTES));
        assert!(matches!(
            ControlMessage::parse(&huge),
            Err(MessageError::TooLarge(_))
        ));
    }
}
