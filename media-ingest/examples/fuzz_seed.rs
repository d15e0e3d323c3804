//! Writes a fuzz seed: the bytes a real RTMP publisher sends (handshake, connect, createStream,
//! publish, metadata, H.264/AAC sequence headers and frames, unpublish), recorded from
//! rml_rtmp's client talking to its server in memory. With it the fuzzer starts past the
//! handshake instead of spending hours finding 3,073 valid bytes.
//!
//! ```text
//! cargo run -p media-ingest --example fuzz_seed -- fuzz/seeds/rtmp_connection/publish
//! ```

use bytes::Bytes;
use rml_rtmp::{
    handshake::{Handshake, HandshakeProcessResult, PeerType},
    sessions::{
        ClientSession, ClientSessionConfig, ClientSessionResult, PublishRequestType, ServerSession,
        ServerSessionConfig, ServerSessionEvent, ServerSessionResult, StreamMetadata,
    },
    time::RtmpTimestamp,
};

type Failure = Box<dyn std::error::Error>;

fn main() -> Result<(), Failure> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: fuzz_seed <output file>")?;
    let mut recorded = Vec::new();

    let mut client_handshake = Handshake::new(PeerType::Client);
    let mut server_handshake = Handshake::new(PeerType::Server);
    let c0c1 = client_handshake
        .generate_outbound_p0_and_p1()
        .map_err(|e| format!("{e:?}"))?;
    recorded.extend_from_slice(&c0c1);
    let s0s1s2 = response(
        server_handshake
            .process_bytes(&c0c1)
            .map_err(|e| format!("{e:?}"))?,
    );
    let c2 = response(
        client_handshake
            .process_bytes(&s0s1s2)
            .map_err(|e| format!("{e:?}"))?,
    );
    recorded.extend_from_slice(&c2);

    let (mut client, client_start) =
        ClientSession::new(ClientSessionConfig::new()).map_err(|e| format!("{e:?}"))?;
    let (mut server, server_start) =
        ServerSession::new(ServerSessionConfig::new()).map_err(|e| format!("{e:?}"))?;
    let mut pair = Pair {
        client: &mut client,
        server: &mut server,
        recorded: &mut recorded,
    };
    pair.deliver_to_client(server_start)?;
    pair.deliver_to_server(client_start)?;

    let connect = pair
        .client
        .request_connection("live".into())
        .map_err(|e| format!("{e:?}"))?;
    pair.deliver_to_server(vec![connect])?;
    let publish = pair
        .client
        .request_publishing("a-good-key".into(), PublishRequestType::Live)
        .map_err(|e| format!("{e:?}"))?;
    pair.deliver_to_server(vec![publish])?;

    let mut metadata = StreamMetadata::new();
    metadata.video_width = Some(320);
    metadata.video_height = Some(240);
    metadata.video_codec_id = Some(7);
    metadata.audio_codec_id = Some(10);
    let sent = pair
        .client
        .publish_metadata(&metadata)
        .map_err(|e| format!("{e:?}"))?;
    pair.deliver_to_server(vec![sent])?;
    let avc_header: &[u8] = &[
        0x17, 0, 0, 0, 0, 1, 0x42, 0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x42, 0, 0x1e, 1, 0, 2, 0x68,
        0xce,
    ];
    let aac_header: &[u8] = &[0xaf, 0, 0x12, 0x10];
    let mut media = vec![
        (true, 0, Bytes::from_static(avc_header)),
        (false, 0, Bytes::from_static(aac_header)),
    ];
    for i in 0..6u32 {
        let keyframe = i % 3 == 0;
        let video: Vec<u8> = [
            &[if keyframe { 0x17 } else { 0x27 }, 1, 0, 0, 0, 0, 0, 0, 3][..],
            &[0x65, 0x88, 0x80],
        ]
        .concat();
        media.push((true, i * 40, Bytes::from(video)));
        media.push((
            false,
            i * 40,
            Bytes::from_static(&[0xaf, 1, 0x21, 0x10, 0x04]),
        ));
    }
    for (video, timestamp, data) in media {
        let timestamp = RtmpTimestamp::new(timestamp);
        let sent = if video {
            pair.client.publish_video_data(data, timestamp, false)
        } else {
            pair.client.publish_audio_data(data, timestamp, false)
        };
        pair.deliver_to_server(vec![sent.map_err(|e| format!("{e:?}"))?])?;
    }
    let unpublish = pair
        .client
        .stop_publishing()
        .map_err(|e| format!("{e:?}"))?;
    pair.deliver_to_server(unpublish)?;

    std::fs::write(&path, &recorded)?;
    println!("wrote {} bytes to {path}", recorded.len());
    Ok(())
}

fn response(result: HandshakeProcessResult) -> Vec<u8> {
    match result {
        HandshakeProcessResult::InProgress { response_bytes }
        | HandshakeProcessResult::Completed { response_bytes, .. } => response_bytes,
    }
}

struct Pair<'a> {
    client: &'a mut ClientSession,
    server: &'a mut ServerSession,
    recorded: &'a mut Vec<u8>,
}

impl Pair<'_> {
    /// Delivers the client's packets to the server (recording them), and the consequences back.
    fn deliver_to_server(&mut self, results: Vec<ClientSessionResult>) -> Result<(), Failure> {
        for result in results {
            if let ClientSessionResult::OutboundResponse(packet) = result {
                self.recorded.extend_from_slice(&packet.bytes);
                let replies = self
                    .server
                    .handle_input(&packet.bytes)
                    .map_err(|e| format!("{e:?}"))?;
                self.deliver_to_client(replies)?;
            }
        }
        Ok(())
    }

    /// Delivers the server's packets to the client; accepts every request the server raises.
    fn deliver_to_client(&mut self, results: Vec<ServerSessionResult>) -> Result<(), Failure> {
        for result in results {
            match result {
                ServerSessionResult::OutboundResponse(packet) => {
                    let replies = self
                        .client
                        .handle_input(&packet.bytes)
                        .map_err(|e| format!("{e:?}"))?;
                    self.deliver_to_server(replies)?;
                }
                ServerSessionResult::RaisedEvent(
                    ServerSessionEvent::ConnectionRequested { request_id, .. }
                    | ServerSessionEvent::PublishStreamRequested { request_id, .. },
                ) => {
                    let accepted = self
                        .server
                        .accept_request(request_id)
                        .map_err(|e| format!("{e:?}"))?;
                    self.deliver_to_client(accepted)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}
