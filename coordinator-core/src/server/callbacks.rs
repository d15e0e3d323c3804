//! Event callbacks through the durable outbox: every event is written to the [`Store`] first,
//! then POSTed to `EVENT_CALLBACK_URL` until it answers 200, with `x-event-id` so the receiver
//! can recognise a repeat. Failed deliveries back off from the retry interval, doubling up to
//! [`MAX_RETRY_DELAY`]; a stream's events go out in order, and one stream's failures do not hold
//! back the others.

use crate::{
    Webhook,
    proto::StreamEvent,
    store::{QueuedEvent, Store},
};
use futures::StreamExt as _;
use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::{Notify, watch};

/// The longest wait between two attempts at one event.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);
/// Deliveries in flight at once.
const CONCURRENCY: usize = 16;
/// Events read from the store per round.
const BATCH: usize = 256;
/// How long the receiver has to answer one callback.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Milliseconds since the Unix epoch: outbox times survive restarts.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The delay before attempt `attempts + 1`.
pub(crate) fn backoff(first: Duration, attempts: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempts.saturating_sub(1))
        .unwrap_or(u32::MAX);
    first.saturating_mul(factor).min(MAX_RETRY_DELAY.max(first))
}

/// Posts events to the application.
pub(crate) struct Sender {
    client: reqwest::Client,
    url: String,
    authorization: Option<String>,
}

impl Sender {
    pub(crate) fn new(webhook: &Webhook) -> Result<Self, reqwest::Error> {
        super::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            .build()?;
        Ok(Self {
            client,
            url: webhook.url.clone(),
            authorization: webhook.auth.header_value(),
        })
    }

    /// One attempt; `Ok` only for status 200.
    async fn send(&self, queued: &QueuedEvent) -> Result<(), Failure> {
        let mut request = self
            .client
            .post(&self.url)
            .header("x-event-id", &queued.event_id)
            .header(reqwest::header::CONTENT_LENGTH, "0");
        request = match &queued.event {
            StreamEvent::Available {
                channel,
                stream_id,
                stream_type,
                resolution,
                index_file,
            } => request
                .header("x-streaming-channel", channel)
                .header("x-streaming-id", stream_id)
                .header("x-event-type", "stream-available")
                .header("x-stream-type", stream_type)
                .header("x-resolution", resolution)
                .header("x-index-file", index_file),
            StreamEvent::Closed { channel, stream_id } => request
                .header("x-streaming-channel", channel)
                .header("x-streaming-id", stream_id)
                .header("x-event-type", "stream-closed"),
        };
        if let Some(authorization) = &self.authorization {
            request = request.header(reqwest::header::AUTHORIZATION, authorization);
        }
        let response = request.send().await.map_err(|error| {
            // A header value HTTP cannot carry (say, a non-ASCII index file path) fails the
            // same way on every attempt.
            let permanent = error.is_builder();
            let reason = error.without_url().to_string();
            if permanent {
                Failure::Permanent(reason)
            } else {
                Failure::Retry(reason)
            }
        })?;
        match response.status() {
            reqwest::StatusCode::OK => Ok(()),
            status => Err(Failure::Retry(format!("the receiver answered {status}"))),
        }
    }
}

enum Failure {
    Retry(String),
    Permanent(String),
}

/// Delivers the outbox until `shutdown` turns true. `wake` is notified when events are queued.
pub(crate) async fn deliver(
    store: Arc<dyn Store>,
    sender: Sender,
    retry: Duration,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let sender = &sender;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let now = now_ms();
        let due = match store.due(now, BATCH).await {
            Ok(due) => due,
            Err(error) => {
                tracing::error!(%error, "cannot read the callback outbox; retrying");
                Vec::new()
            }
        };
        if due.is_empty() {
            let next = store.next_due().await.ok().flatten();
            // With events queued but none due (all backing off), wake for the earliest; with
            // a store error, try again after the retry interval.
            let wait = match next {
                Some(at) => Duration::from_millis(u64::try_from(at - now).unwrap_or(0)),
                None => MAX_RETRY_DELAY,
            }
            .clamp(Duration::from_millis(1), MAX_RETRY_DELAY);
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let results: Vec<(QueuedEvent, Result<(), Failure>)> = futures::stream::iter(due)
            .map(|queued| async move {
                let result = sender.send(&queued).await;
                (queued, result)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut delivered = Vec::new();
        for (queued, result) in results {
            let recorded = match result {
                Ok(()) => {
                    metrics::counter!("coordinator_callbacks_delivered_total").increment(1);
                    delivered.push(queued.seq);
                    Ok(())
                }
                Err(Failure::Permanent(error)) => {
                    tracing::error!(
                        event_id = %queued.event_id, %error,
                        "event callback cannot be sent at all; dropped"
                    );
                    metrics::counter!("coordinator_callbacks_dropped_total").increment(1);
                    delivered.push(queued.seq);
                    Ok(())
                }
                Err(Failure::Retry(error)) => {
                    let attempts = queued.attempts.saturating_add(1);
                    let delay = backoff(retry, attempts);
                    tracing::warn!(
                        event_id = %queued.event_id, attempts, %error,
                        retry_in = ?delay, "event callback failed"
                    );
                    metrics::counter!("coordinator_callbacks_failed_total").increment(1);
                    let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
                    store
                        .retry_at(queued.seq, attempts, now_ms().saturating_add(delay_ms))
                        .await
                }
            };
            if let Err(error) = recorded {
                tracing::error!(%error, event_id = %queued.event_id, "cannot update the outbox");
            }
        }
        if let Err(error) = store.delivered(&delivered).await {
            // They will be sent again, with the same event ids.
            tracing::error!(%error, count = delivered.len(), "cannot remove delivered events");
        }
    }
}

#[cfg(test)]
mod tests_callbacks {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_first_delay_up_to_the_cap() {
        let first = Duration::from_secs(10);
        assert_eq!(backoff(first, 1), Duration::from_secs(10));
        assert_eq!(backoff(first, 2), Duration::from_secs(20));
        assert_eq!(backoff(first, 3), Duration::from_secs(40));
        assert_eq!(backoff(first, 6), MAX_RETRY_DELAY);
        assert_eq!(backoff(first, u32::MAX), MAX_RETRY_DELAY);
        let long = Duration::from_secs(900);
        assert_eq!(
            backoff(long, 4),
            long,
            "a first delay above the cap is kept"
        );
    }
}
