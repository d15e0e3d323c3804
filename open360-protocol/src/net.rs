//! What every server of this crate does with its listener.

use socketioxide::{adapter::Adapter, extract::SocketRef};
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Small messages go out at once: TCP_NODELAY on every accepted connection (Nagle's delay,
/// with the peer's delayed acknowledgement, held relayed messages back tens of milliseconds).
pub(crate) fn no_delay(listener: TcpListener) -> impl axum::serve::Listener<Addr = SocketAddr> {
    use axum::serve::ListenerExt as _;
    listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    })
}

/// socketioxide keeps each socket's request head for the socket's lifetime, and hyper's header
/// values and URI are slices of the connection's read buffer (8 to 16 KiB), which they would
/// keep alive all that time. Owned copies of the few bytes let it go. (castaway-relay does the
/// same for its listeners.)
async fn detach_head(request: axum::extract::Request) -> axum::extract::Request {
    use axum::http::{HeaderName, HeaderValue, Uri};
    let (mut head, body) = request.into_parts();
    head.headers = head
        .headers
        .iter()
        .filter_map(|(name, value)| {
            let name = HeaderName::from_bytes(name.as_str().as_bytes()).ok()?;
            let value = HeaderValue::from_bytes(value.as_bytes()).ok()?;
            Some((name, value))
        })
        .collect();
    let owned = |uri: &Uri| Uri::try_from(uri.to_string()).ok();
    if let Some(uri) = owned(&head.uri) {
        head.uri = uri;
    }
    if let Some(original) = head.extensions.get_mut::<axum::extract::OriginalUri>()
        && let Some(uri) = owned(&original.0)
    {
        original.0 = uri;
    }
    axum::extract::Request::from_parts(head, body)
}

/// `routes` (Socket.IO's) with each request's head detached first (see [`detach_head`]).
pub(crate) fn detached(routes: axum::Router) -> axum::Router {
    routes.layer(axum::middleware::map_request(detach_head))
}

/// The value of `key` in the query string a socket connected with, percent-decoded.
pub(crate) fn query_param<A: Adapter>(s: &SocketRef<A>, key: &str) -> Option<String> {
    s.req_parts().uri.query().and_then(|q| {
        q.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| percent_decode(v))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod query {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(percent_decode("open360%3Aweb-api"), "open360:web-api");
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
