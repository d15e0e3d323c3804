//! The relay's Socket.IO adapter: a room broadcast whose packet is encoded once, and whose
//! sockets are each tried on their own, so a full queue is known by socket.
//!
//! socketioxide's own broadcast serializes a chunk once and shares its bytes, but reports the
//! sockets whose queue was full only as a count; a per-socket `emit` says which socket, but
//! serializes (copies) the chunk for each. This adapter keeps both: one encoding, shared by
//! every queue, and the ids of the sockets that could not take it, handed to a callback (the
//! relay drops them as too slow).

use socketioxide::adapter::Emitter;
use socketioxide_core::{
    Sid,
    adapter::{
        BroadcastOptions, CoreAdapter, CoreLocalAdapter, DefinedAdapter, SocketEmitter,
        errors::BroadcastError,
    },
    packet::Packet,
};
use std::{
    convert::Infallible,
    future::{self, Future},
    sync::{Arc, OnceLock},
    time::Duration,
};

/// Called with a namespace's path and the sockets a broadcast could not be queued to.
type OnFull = Box<dyn Fn(&str, Vec<Sid>) + Send + Sync>;

/// Where the adapter reports full sockets; set once the relay exists.
#[derive(Default)]
pub(crate) struct Overflow(OnceLock<OnFull>);

impl Overflow {
    pub(crate) fn on_full(&self, report: impl Fn(&str, Vec<Sid>) + Send + Sync + 'static) {
        let _ = self.0.set(Box::new(report));
    }
}

/// See the module docs.
pub(crate) struct FanOut {
    local: CoreLocalAdapter<Emitter>,
    overflow: Arc<Overflow>,
}

impl CoreAdapter<Emitter> for FanOut {
    type Error = Infallible;
    type State = Arc<Overflow>;
    type AckStream = <Emitter as SocketEmitter>::AckStream;
    type InitRes = ();

    fn new(overflow: &Self::State, local: CoreLocalAdapter<Emitter>) -> Self {
        Self {
            local,
            overflow: overflow.clone(),
        }
    }

    fn init(self: Arc<Self>, on_success: impl FnOnce() + Send + 'static) -> Self::InitRes {
        on_success();
    }

    fn broadcast(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
    ) -> impl Future<Output = Result<(), BroadcastError>> + Send {
        let mut full = Vec::new();
        let mut errors = Vec::new();
        for sid in self.local.sockets(opts) {
            // Without rooms or the broadcast flag, options name exactly one socket. The clone
            // shares the encoded chunk: only the packet's few header bytes are per socket.
            if let Err(mut failed) = self
                .local
                .broadcast(packet.clone(), BroadcastOptions::new(sid))
            {
                full.push(sid);
                errors.append(&mut failed);
            }
        }
        if !full.is_empty()
            && let Some(report) = self.overflow.0.get()
        {
            report(self.local.path(), full);
        }
        future::ready(if errors.is_empty() {
            Ok(())
        } else {
            Err(BroadcastError::Socket(errors))
        })
    }

    async fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: BroadcastOptions,
        timeout: Option<Duration>,
    ) -> Result<Self::AckStream, Self::Error> {
        Ok(self.local.broadcast_with_ack(packet, opts, timeout).0)
    }

    fn get_local(&self) -> &CoreLocalAdapter<Emitter> {
        &self.local
    }
}

impl DefinedAdapter for FanOut {}
