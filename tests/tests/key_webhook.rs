//! media-ingest's webhook key verifier against a real HTTP receiver, and end to end with ffmpeg.

mod ingest_support;

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode},
    response::IntoResponse,
    routing::any,
};
use harness::{Ffmpeg, TestSignal, free_port, http, peer};
use ingest_support::{config, expect_event, start};
use media_ingest::{
    IngestEvent, KeyVerifier, Preview, PublishRequest, Rendition, VerifyError, WebhookVerifier,
};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::sync::mpsc;

/// What the receiver saw of one call.
#[derive(Debug)]
struct Call {
    method: Method,
    headers: HeaderMap,
    body: Bytes,
}

/// A verification endpoint: `good` is accepted with options, `bad-options` with a malformed
/// header, anything else refused with 403.
async fn receiver() -> (harness::LocalServer, mpsc::UnboundedReceiver<Call>) {
    let (calls, seen) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/verify",
        any(
            async |State(calls): State<mpsc::UnboundedSender<Call>>,
                   method: Method,
                   headers: HeaderMap,
                   body: Bytes| {
                let key = headers
                    .get("x-streaming-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let _ = calls.send(Call {
                    method,
                    headers,
                    body,
                });
                match key.as_str() {
                    "good" => (
                        StatusCode::OK,
                        [
                            ("x-record", "true"),
                            ("x-previews", "320x180, 5"),
                            ("x-resolutions", "1280x720-30~2500,ORIGINAL"),
                        ],
                    )
                        .into_response(),
                    "bad-options" => (StatusCode::OK, [("x-resolutions", "huge")]).into_response(),
                    _ => StatusCode::FORBIDDEN.into_response(),
                }
            },
        ),
    );
    (
        http::serve(app.with_state(calls)).await.expect("served"),
        seen,
    )
}

fn request(key: &str) -> PublishRequest {
    PublishRequest {
        app: "channel-7".into(),
        key: key.into(),
        client: "[::ffff:127.0.0.1]:50000".parse().expect("an address"),
    }
}

#[tokio::test]
async fn the_webhook_gets_the_documented_request_and_its_answer_decides() {
    let (server, mut calls) = receiver().await;
    let verifier = WebhookVerifier::new(
        server.url("/verify"),
        Some("Bearer s3cret".into()),
        Duration::from_secs(5),
    )
    .expect("built");

    let accepted = verifier.verify(&request("good")).await.expect("accepted");
    let options = accepted.options();
    assert!(options.record);
    assert_eq!(
        options.previews,
        Some(Preview {
            width: 320,
            height: 180,
            interval: Duration::from_secs(5)
        })
    );
    assert_eq!(
        options.renditions,
        [
            Rendition::Scaled {
                width: 1280,
                height: 720,
                fps: 30,
                kbps: Some(2500)
            },
            Rendition::Original
        ]
    );

    let call = calls.recv().await.expect("a call");
    assert_eq!(call.method, Method::POST);
    assert!(call.body.is_empty(), "the body must be empty");
    let header = |name: &str| {
        call.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("x-streaming-channel").as_deref(), Some("channel-7"));
    assert_eq!(header("x-streaming-key").as_deref(), Some("good"));
    assert_eq!(
        header("x-user-ip").as_deref(),
        Some("127.0.0.1"),
        "IPv4-mapped addresses are reported as IPv4"
    );
    assert_eq!(header("authorization").as_deref(), Some("Bearer s3cret"));

    match verifier.verify(&request("stolen")).await {
        Err(VerifyError::Denied(reason)) => assert!(
            reason.contains("403") && !reason.contains("stolen"),
            "{reason}"
        ),
        other => panic!("expected a denial, got {other:?}"),
    }
    assert!(
        matches!(
            verifier.verify(&request("bad-options")).await,
            Err(VerifyError::Unavailable(_))
        ),
        "malformed options fail closed"
    );
}

#[tokio::test]
async fn an_unreachable_webhook_refuses() {
    let url = format!("http://127.0.0.1:{}/verify", free_port().expect("a port"));
    let verifier = WebhookVerifier::new(url, None, Duration::from_secs(5)).expect("built");
    match verifier.verify(&request("good")).await {
        Err(VerifyError::Unavailable(reason)) => assert!(!reason.contains("good"), "{reason}"),
        other => panic!("expected the verifier to be unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn ffmpeg_publishers_are_admitted_by_the_webhook() {
    let Some(ffmpeg) = peer(Ffmpeg::locate()) else {
        return;
    };
    let (receiver, mut calls) = receiver().await;
    let verifier =
        WebhookVerifier::new(receiver.url("/verify"), None, Duration::from_secs(5)).expect("built");
    let mut server = start(config(|_| {}), Arc::new(verifier)).await;
    let addr: SocketAddr = server.addr;

    let publisher = ffmpeg
        .publish(
            &format!("rtmp://{addr}/channel-7/good"),
            &TestSignal::lasting(Duration::from_secs(2)),
        )
        .expect("publishing");
    let IngestEvent::PostPublish { options, .. } = expect_event(&mut server.events, |e| {
        matches!(e, IngestEvent::PostPublish { .. })
    })
    .await
    else {
        unreachable!()
    };
    assert!(options.record);
    let call = calls.recv().await.expect("a call");
    assert_eq!(
        call.headers
            .get("x-streaming-channel")
            .and_then(|v| v.to_str().ok()),
        Some("channel-7")
    );
    publisher
        .finish(Duration::from_secs(60))
        .await
        .expect("published");

    let mut refused = ffmpeg
        .publish(
            &format!("rtmp://{addr}/channel-7/stolen"),
            &TestSignal::lasting(Duration::from_secs(2)),
        )
        .expect("started");
    let IngestEvent::PublishRefused { reason, .. } = expect_event(&mut server.events, |e| {
        matches!(e, IngestEvent::PublishRefused { .. })
    })
    .await
    else {
        unreachable!()
    };
    assert!(reason.contains("403"), "{reason}");
    assert!(
        !refused
            .wait(Duration::from_secs(30))
            .await
            .expect("ended")
            .success()
    );
}
