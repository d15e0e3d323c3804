//! `rtmp://host[:port]/<app>/<key>`, taken apart without ever echoing the key.

use super::PullError;
use std::fmt;

/// RTMP's registered port.
const DEFAULT_PORT: u16 = 1935;

/// Where a pull plays from.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct PullUrl {
    /// A host name or IP address (an IPv6 address without its brackets).
    pub(super) host: String,
    pub(super) port: u16,
    /// The application: everything between the host and the last `/` (usually one segment).
    pub(super) app: String,
    /// The stream key: the last segment, as written (a secret).
    pub(super) key: String,
}

impl fmt::Debug for PullUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("app", &self.app)
            .field("key", &"[redacted]")
            .finish()
    }
}

fn bad(reason: &'static str) -> PullError {
    PullError::BadUrl(reason)
}

impl PullUrl {
    /// Parses `rtmp://host[:port]/<app>/<key>`. Errors say what is wrong, never what was
    /// written (the key may be in it).
    pub(super) fn parse(url: &str) -> Result<Self, PullError> {
        if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("the URL contains spaces or control characters"));
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad("expected rtmp://host[:port]/<app>/<key>"));
        };
        if scheme.eq_ignore_ascii_case("rtmps") {
            return Err(bad("rtmps (RTMP over TLS) is not supported"));
        }
        if !scheme.eq_ignore_ascii_case("rtmp") {
            return Err(bad("the scheme must be rtmp"));
        }
        let Some((authority, path)) = rest.split_once('/') else {
            return Err(bad("no application and stream key (expected /<app>/<key>)"));
        };
        if authority.contains('@') {
            return Err(bad("user names and passwords in the URL are not supported"));
        }
        let (host, port) = host_and_port(authority)?;
        let Some((app, key)) = path.rsplit_once('/') else {
            return Err(bad("no stream key (expected /<app>/<key>)"));
        };
        if app.is_empty() || app.split('/').any(str::is_empty) {
            return Err(bad("empty application name"));
        }
        if key.is_empty() {
            return Err(bad("empty stream key"));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            app: app.to_owned(),
            key: key.to_owned(),
        })
    }

    /// `host:port`, as errors and logs name the server.
    pub(super) fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The `tcUrl` of `connect`: the URL without the key, as some servers require it.
    pub(super) fn tc_url(&self) -> String {
        format!("rtmp://{}/{}", self.addr(), self.app)
    }
}

fn host_and_port(authority: &str) -> Result<(&str, u16), PullError> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err(bad("unclosed [ in the host"));
        };
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(bad("unexpected characters after the IPv6 address")),
            },
        }
    } else if authority.matches(':').count() > 1 {
        return Err(bad("an IPv6 address must be in brackets"));
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        // `u16::from_str` would also take a leading `+`; a URL's port is digits only.
        Some(port) if port.bytes().all(|b| b.is_ascii_digit()) => match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(bad("the port must be a number from 1 to 65535")),
        },
        Some(_) => return Err(bad("the port must be a number from 1 to 65535")),
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests_url {
    use super::*;

    fn parsed(url: &str) -> PullUrl {
        PullUrl::parse(url).expect("a valid URL")
    }

    fn refused(url: &str) -> String {
        match PullUrl::parse(url) {
            Err(error) => error.to_string(),
            Ok(parsed) => panic!("{url} parsed as {parsed:?}"),
        }
    }

    #[test]
    fn app_and_key_are_the_path_split_at_its_last_slash() {
        let url = parsed("rtmp://media.example:1936/live/s3cret");
        assert_eq!(
            (
                url.host.as_str(),
                url.port,
                url.app.as_str(),
                url.key.as_str()
            ),
            ("media.example", 1936, "live", "s3cret")
        );
        assert_eq!(url.addr(), "media.example:1936");
        assert_eq!(url.tc_url(), "rtmp://media.example:1936/live");

        let url = parsed("RTMP://10.0.0.7/app/inst/key?token=abc");
        assert_eq!((url.port, url.app.as_str()), (1935, "app/inst"));
        assert_eq!(url.key, "key?token=abc");
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        let url = parsed("rtmp://[::1]:19350/live/k");
        assert_eq!((url.host.as_str(), url.port), ("::1", 19350));
        assert_eq!(url.addr(), "[::1]:19350");
        assert_eq!(parsed("rtmp://[fe80::1]/live/k").port, 1935);
        assert!(refused("rtmp://::1/live/k").contains("brackets"));
        assert!(refused("rtmp://[::1/live/k").contains("unclosed"));
        assert!(refused("rtmp://[::1]x/live/k").contains("after the IPv6"));
    }

    #[test]
    fn malformed_urls_are_refused_with_a_reason_that_never_holds_the_key() {
        let cases = [
            ("rtmp://host/live", "no stream key"),
            ("rtmp://host/live/", "empty stream key"),
            ("rtmp://host/s3cret", "no stream key"),
            ("rtmp://host//s3cret", "empty application"),
            ("rtmp://host/a//s3cret", "empty application"),
            ("rtmp://host", "no application"),
            ("http://host/live/s3cret", "scheme must be rtmp"),
            ("rtmps://host/live/s3cret", "not supported"),
            ("host/live/s3cret", "expected rtmp://"),
            ("rtmp:///live/s3cret", "no host"),
            ("rtmp://:1935/live/s3cret", "no host"),
            ("rtmp://host:0/live/s3cret", "port"),
            ("rtmp://host:65536/live/s3cret", "port"),
            ("rtmp://host:+80/live/s3cret", "port"),
            ("rtmp://host:/live/s3cret", "port"),
            ("rtmp://host:http/live/s3cret", "port"),
            ("rtmp://user:s3cret@host/live/k", "passwords"),
            ("rtmp://host/live/s3 cret", "spaces"),
            ("rtmp://host/live/s3cret\n", "control"),
            ("", "expected rtmp://"),
        ];
        for (url, reason) in cases {
            let error = refused(url);
            assert!(error.contains(reason), "{url:?}: {error}");
            assert!(!error.contains("s3"), "{url:?} leaked the key: {error}");
        }
    }

    #[test]
    fn debug_output_hides_the_key() {
        let shown = format!("{:?}", parsed("rtmp://host/live/s3cret"));
        assert!(
            !shown.contains("s3cret") && shown.contains("live"),
            "{shown}"
        );
    }
}
