//! One WebRTC session with a browser: the renderer offers one send-only VP8 video track,
//! trickles its ICE candidates, and streams the test picture until the session is dropped.

use super::video::{self, PictureConfig};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::peer_connection::configuration::media_engine::MIME_TYPE_VP8;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceCandidateInit, RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription,
    Registry, SettingEngineBuilder, register_default_interceptors,
};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit, RtpSender};

/// The VP8 payload type offered.
const VP8_PAYLOAD_TYPE: u8 = 96;

/// What every session is made with.
#[derive(Debug, Clone)]
pub(crate) struct SessionConfig {
    /// The picture to stream.
    pub(crate) picture: PictureConfig,
    /// The local UDP address of the peer connection (its host candidate).
    pub(crate) udp_addr: String,
}

/// Why a session could not be set up or advanced.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    /// The WebRTC stack refused.
    #[error(transparent)]
    WebRtc(#[from] webrtc::error::Error),
}

/// What the peer connection reports, for the signaling loop.
#[derive(Debug)]
pub(crate) enum SessionEvent {
    /// A local candidate, ready to send (with a usable `sdpMid`).
    Candidate(RTCIceCandidateInit),
    /// The connection's state changed.
    State(RTCPeerConnectionState),
}

/// Passes the driver's events on without blocking it.
struct Events {
    events: mpsc::UnboundedSender<PeerEvent>,
}

enum PeerEvent {
    Candidate(Result<RTCIceCandidateInit, String>),
    State(RTCPeerConnectionState),
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        // The receiver is gone once the session is.
        let _ = self.events.send(PeerEvent::Candidate(
            event.candidate.to_json().map_err(|e| e.to_string()),
        ));
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.events.send(PeerEvent::State(state));
    }
}

/// A session with one browser peer. Dropping it stops ffmpeg and closes the connection.
pub(crate) struct Session {
    partner: u32,
    connection: Arc<dyn PeerConnection>,
    sender: Arc<dyn RtpSender>,
    /// The mid of the video m-line, put on candidates the stack gives an empty one.
    mid: String,
    events: mpsc::UnboundedReceiver<PeerEvent>,
    /// Remote candidates that came before the answer.
    early_remote: Vec<RTCIceCandidateInit>,
    answered: bool,
    payload_type: watch::Sender<Option<u8>>,
    video: JoinHandle<()>,
}

impl Session {
    /// A peer connection with the video track, its offer applied locally, and ffmpeg started.
    /// Returns the session and the offer to send.
    pub(crate) async fn offer(
        config: &SessionConfig,
        partner: u32,
    ) -> Result<(Self, RTCSessionDescription), SessionError> {
        let vp8 = RTCRtpCodec {
            mime_type: MIME_TYPE_VP8.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: Vec::new(),
        };
        let mut media_engine = MediaEngine::default();
        media_engine.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: vp8.clone(),
                payload_type: VP8_PAYLOAD_TYPE,
            },
            RtpCodecKind::Video,
        )?;
        // NACK responder (retransmissions), sender reports; adds `nack`, `nack pli` feedback.
        let registry = register_default_interceptors(Registry::new(), &mut media_engine)?;
        // mDNS off: its default mode joins a multicast group, which fails without a network.
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .build();
        let (events_tx, events) = mpsc::unbounded_channel();
        let connection = PeerConnectionBuilder::new()
            .with_setting_engine(settings)
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            // Not optional: `build()` fails without a handler.
            .with_handler(Arc::new(Events { events: events_tx }))
            .with_udp_addrs(vec![config.udp_addr.clone()])
            .build()
            .await?;
        let connection: Arc<dyn PeerConnection> = Arc::new(connection);

        let ssrc = rand::random::<u32>();
        let track = Arc::new(TrackLocalStaticSample::new(
            Instant::now(),
            MediaStreamTrack::new(
                "openspace".to_owned(),
                "openspace-video".to_owned(),
                "OpenSpace test picture".to_owned(),
                RtpCodecKind::Video,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec: vp8,
                    ..Default::default()
                }],
            ),
        )?);
        let transceiver = connection
            .add_transceiver_from_track(
                Arc::clone(&track) as _,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    streams: Vec::new(),
                    send_encodings: Vec::new(),
                }),
            )
            .await?;
        let sender = transceiver.sender().await?.ok_or_else(|| {
            webrtc::error::Error::Other("the video transceiver has no sender".into())
        })?;
        let offer = connection.create_offer(None).await?;
        connection.set_local_description(offer.clone()).await?;
        let mid = first_mid(&offer.sdp).unwrap_or_else(|| "0".to_owned());

        let (payload_type, payload_type_rx) = watch::channel(None);
        let picture = config.picture.clone();
        let video = tokio::spawn(async move {
            match video::stream(picture, track, ssrc, payload_type_rx).await {
                Ok(()) => {}
                Err(error) => tracing::warn!(%error, "the test picture stopped"),
            }
        });
        let session = Self {
            partner,
            connection,
            sender,
            mid,
            events,
            early_remote: Vec::new(),
            answered: false,
            payload_type,
            video,
        };
        Ok((session, offer))
    }

    /// The browser peer's id.
    pub(crate) fn partner(&self) -> u32 {
        self.partner
    }

    /// Applies the browser's answer (and the candidates that came before it); frames flow
    /// from here on, once the transport is up.
    pub(crate) async fn handle_answer(
        &mut self,
        answer: RTCSessionDescription,
    ) -> Result<(), SessionError> {
        self.connection.set_remote_description(answer).await?;
        self.answered = true;
        for candidate in std::mem::take(&mut self.early_remote) {
            self.connection.add_ice_candidate(candidate).await?;
        }
        // The payload type the answer kept for VP8: every packet must carry a negotiated one.
        let negotiated = self
            .sender
            .get_parameters()
            .await?
            .rtp_parameters
            .codecs
            .first()
            .map_or(VP8_PAYLOAD_TYPE, |codec| codec.payload_type);
        self.payload_type.send_replace(Some(negotiated));
        Ok(())
    }

    /// Adds a remote candidate, or keeps it until the answer is applied.
    pub(crate) async fn handle_remote_candidate(
        &mut self,
        candidate: RTCIceCandidateInit,
    ) -> Result<(), SessionError> {
        if self.answered {
            self.connection.add_ice_candidate(candidate).await?;
        } else {
            self.early_remote.push(candidate);
        }
        Ok(())
    }

    /// The next thing the connection reports. Pending forever once its driver is gone.
    pub(crate) async fn next_event(&mut self) -> SessionEvent {
        loop {
            match self.events.recv().await {
                Some(PeerEvent::Candidate(Ok(mut candidate))) => {
                    // The stack leaves sdpMid empty; browsers need the m-line's mid (or index).
                    if candidate.sdp_mid.as_deref().is_none_or(str::is_empty) {
                        candidate.sdp_mid = Some(self.mid.clone());
                    }
                    candidate.sdp_mline_index.get_or_insert(0);
                    return SessionEvent::Candidate(candidate);
                }
                Some(PeerEvent::Candidate(Err(error))) => {
                    tracing::warn!(%error, "a local candidate could not be serialised");
                }
                Some(PeerEvent::State(state)) => return SessionEvent::State(state),
                None => std::future::pending::<()>().await,
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Dropping the video task's future kills ffmpeg (kill_on_drop).
        self.video.abort();
        // Outside a runtime (never, in this binary) the connection's driver is gone anyway.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let connection = Arc::clone(&self.connection);
        let partner = self.partner;
        runtime.spawn(async move {
            if let Err(error) = connection.close().await {
                tracing::debug!(%error, partner, "closing the peer connection");
            }
        });
    }
}

/// The first `a=mid:` of an SDP.
fn first_mid(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|line| line.trim_end().strip_prefix("a=mid:"))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::first_mid;

    #[test]
    fn the_mid_comes_from_the_first_m_line() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\nm=audio 9 x\r\na=mid:1\r\n";
        assert_eq!(first_mid(sdp).as_deref(), Some("0"));
        assert_eq!(first_mid("v=0\r\n"), None);
    }
}
