//! Packaging every accepted stream, as Open360's ingest and the coordinator's encoder do.

use super::packager::{HlsOutput, HlsReport, package_hls};
use crate::{
    Error, HlsConfig, IngestEvent, IngestHandle, SessionId, StreamName, verify::PublishOptions,
};
use tokio::sync::{broadcast::error::RecvError, mpsc};

/// A stream's packaging has ended (with the stream, or on a file error).
#[derive(Debug)]
#[non_exhaustive]
pub struct HlsFinished {
    /// The publisher's session.
    pub session: SessionId,
    /// The stream.
    pub stream: StreamName,
    /// Where its files are.
    pub output: HlsOutput,
    /// What was written, or why packaging stopped.
    pub result: Result<HlsReport, Error>,
}

impl IngestHandle {
    /// Packages every stream accepted from now on into HLS, in the directory `output` chooses
    /// for it (`None` skips the stream). Refused publishers never reach it, so they never get a
    /// file. Each stream's end is reported on the returned channel; packaging goes on whether or
    /// not anybody reads it.
    pub fn package_every_stream<F>(
        &self,
        config: HlsConfig,
        output: F,
    ) -> mpsc::UnboundedReceiver<HlsFinished>
    where
        F: Fn(&StreamName, &PublishOptions, SessionId) -> Option<HlsOutput> + Send + Sync + 'static,
    {
        let (finished, reports) = mpsc::unbounded_channel();
        let mut events = self.events();
        let handle = self.clone();
        tokio::spawn(async move {
            loop {
                let (session, stream, options) = match events.recv().await {
                    Ok(IngestEvent::PostPublish {
                        session,
                        stream,
                        options,
                    }) => (session, stream, options),
                    Ok(_) => continue,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::error!(
                            missed,
                            "HLS packaging fell behind the session events; some streams may not be packaged"
                        );
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                let Some(output) = output(&stream, &options, session) else {
                    continue;
                };
                // The publisher may already be gone; then there is nothing to package.
                let Some(subscription) = handle.subscribe(&stream) else {
                    continue;
                };
                let (finished, config) = (finished.clone(), config.clone());
                tokio::spawn(async move {
                    let result = package_hls(subscription, output.clone(), &config).await;
                    if let Err(error) = &result {
                        tracing::error!(%error, app = %stream.app, "HLS packaging failed");
                    }
                    let _ = finished.send(HlsFinished {
                        session,
                        stream,
                        output,
                        result,
                    });
                });
            }
        });
        reports
    }
}
