//! What every server of this crate does with its listener.

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
