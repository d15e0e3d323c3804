//! Firebase ID tokens against a local stand-in for Google's certificate endpoint, signed with a
//! test-only RSA key (tests/fixtures, made with `openssl req -x509 -newkey rsa:2048`).

use axum::{Router, http::header, routing::get};
use castaway_relay::{CertSource, FirebaseVerifier, TokenVerifier};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use serde_json::{Value, json};
use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

const KEY: &str = include_str!("fixtures/test-signing-key.pem");
const CERT: &str = include_str!("fixtures/test-signing-cert.pem");
const PROJECT: &str = "castaway-test";

fn sign(kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(KEY.as_bytes()).expect("key"),
    )
    .expect("signed")
}

fn claims() -> Value {
    let now = get_current_timestamp();
    json!({
        "sub": "artist-1",
        "aud": PROJECT,
        "iss": format!("https://securetoken.google.com/{PROJECT}"),
        "iat": now - 10,
        "auth_time": now - 10,
        "exp": now + 3600,
    })
}

/// Serves `{"k1": CERT}`, counting fetches.
async fn certificates() -> (String, Arc<AtomicUsize>) {
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    let router = Router::new().route(
        "/certs",
        get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async {
                (
                    [(header::CACHE_CONTROL, "public, max-age=3600")],
                    json!({ "k1": CERT }).to_string(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bound");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/certs"), fetches)
}

#[tokio::test]
async fn firebase_tokens_are_checked_against_the_published_certificates() {
    let (url, fetches) = certificates().await;
    let verifier = FirebaseVerifier::new(PROJECT, CertSource::Url(url)).expect("verifier");
    let user = verifier
        .verify(&sign("k1", &claims()))
        .await
        .expect("a valid token");
    assert_eq!(user.uid(), "artist-1");
    verifier
        .verify(&sign("k1", &claims()))
        .await
        .expect("valid again");
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "cached for its max-age");

    let now = get_current_timestamp();
    let broken: [(&str, Value); 5] = [
        ("aud", json!("another-project")),
        (
            "iss",
            json!("https://securetoken.google.com/another-project"),
        ),
        ("exp", json!(now - 3600)),
        ("iat", json!(now + 3600)),
        ("sub", json!("")),
    ];
    for (claim, value) in broken {
        let mut bad = claims();
        bad[claim] = value;
        assert!(
            verifier.verify(&sign("k1", &bad)).await.is_err(),
            "{claim} not checked"
        );
    }
    // A key id Google does not publish: one more fetch (keys rotate), then refused.
    assert!(verifier.verify(&sign("k2", &claims())).await.is_err());
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    // HS256 "signed" with the public certificate (algorithm confusion) is refused.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let confused = encode(
        &header,
        &claims(),
        &EncodingKey::from_secret(CERT.as_bytes()),
    )
    .expect("signed");
    assert!(verifier.verify(&confused).await.is_err());
    assert!(verifier.verify("not.a.token").await.is_err());
}

#[tokio::test]
async fn certificates_can_come_from_a_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("certs.json");
    std::fs::write(&path, json!({ "k1": CERT }).to_string()).expect("written");
    let verifier = FirebaseVerifier::new(PROJECT, CertSource::File(path)).expect("verifier");
    let user = verifier
        .verify(&sign("k1", &claims()))
        .await
        .expect("a valid token");
    assert_eq!(user.uid(), "artist-1");
}
