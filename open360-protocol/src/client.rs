//! The service SDK: a [`ServiceClient`] connects as a named service over a [`Transport`],
//! asks questions and matches their replies, tells, and answers its own prompts.
//!
//! - A reply finds its question by the request id it echoes; a legacy peer's reply (no id) by
//!   its prompt (`<prompt>-reply`) and the service that sent it, oldest question first.
//! - `status` questions are answered `alive` without a handler.
//! - One-way messages are handled one at a time, in the order they arrived (a `setOnline`
//!   never overtakes the one told before it); questions are handled concurrently. At most
//!   4,096 messages wait for their handler; beyond that they are dropped, with a warning.
//! - The link is reopened with backoff (100 ms doubling to 5 s) whenever it is lost; a question
//!   asked while it is down, or waiting for its reply when it goes, fails at once with
//!   [`AskError::NotConnected`].

use crate::{
    message::{ApiMessage, MessageType, Package},
    transport::{Link, Transport},
};
use futures::future::BoxFuture;
use serde_json::Value;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, Weak},
    time::Duration,
};
use tokio::sync::{mpsc, oneshot, watch};

/// Why a question got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AskError {
    /// The link to the hub is down.
    #[error("not connected to the hub")]
    NotConnected,
    /// No reply within the timeout.
    #[error("no reply from {target} within {timeout:?}")]
    Timeout {
        /// Who was asked.
        target: String,
        /// How long the client waited.
        timeout: Duration,
    },
    /// No socket of the target service is connected to the hub.
    #[error("no service {0} is connected")]
    Absent(String),
    /// The reply was an error.
    #[error("{0}")]
    Refused(String),
}

/// What a handler answers: the reply's data, or an error for the asker.
pub type Answer = Result<Value, String>;

type Handler = Arc<dyn Fn(ApiMessage) -> BoxFuture<'static, Answer> + Send + Sync>;

/// Builds a [`ServiceClient`]: its label, its handlers, its timeout.
pub struct ServiceBuilder {
    label: String,
    handlers: HashMap<String, Handler>,
    ask_timeout: Duration,
}

impl ServiceBuilder {
    /// Handles the prompt `prompt`: a question is answered with what `handler` returns, a
    /// one-way message's answer is dropped.
    pub fn on<F, Fut>(mut self, prompt: &str, handler: F) -> Self
    where
        F: Fn(ApiMessage) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Answer> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |message| Box::pin(handler(message)));
        self.handlers.insert(prompt.to_owned(), handler);
        self
    }

    /// How long [`ServiceClient::ask`] waits for a reply. Default 5 s.
    pub fn ask_timeout(mut self, timeout: Duration) -> Self {
        self.ask_timeout = timeout;
        self
    }

    /// Starts connecting over `transport`, now and whenever the link is lost, until the client
    /// is dropped.
    pub fn start(self, transport: Arc<dyn Transport>) -> ServiceClient {
        let (linked, _) = watch::channel(false);
        let (ordered, queue) = mpsc::channel(ORDERED_QUEUE);
        tokio::spawn(handle_in_order(queue));
        let inner = Arc::new(Inner {
            ordered,
            label: self.label,
            handlers: self.handlers,
            ask_timeout: self.ask_timeout,
            link: Mutex::new(None),
            pending: Mutex::new(Pending::default()),
            linked,
        });
        let task = tokio::spawn(keep_linked(Arc::downgrade(&inner), transport));
        ServiceClient {
            inner,
            _task: Arc::new(AbortOnDrop(task)),
        }
    }
}

/// A service connected to the hub (see the module docs).
#[derive(Clone)]
pub struct ServiceClient {
    inner: Arc<Inner>,
    _task: Arc<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Inner {
    /// One-way messages, for their handlers in arrival order.
    ordered: mpsc::Sender<(Handler, ApiMessage)>,
    label: String,
    handlers: HashMap<String, Handler>,
    ask_timeout: Duration,
    link: Mutex<Option<mpsc::Sender<ApiMessage>>>,
    pending: Mutex<Pending>,
    linked: watch::Sender<bool>,
}

/// Questions waiting for their reply, by request id, in the order they were asked.
#[derive(Default)]
struct Pending {
    next: u64,
    waiting: HashMap<String, Waiting>,
}

struct Waiting {
    order: u64,
    target: String,
    prompt: String,
    reply: oneshot::Sender<ApiMessage>,
}

impl ServiceClient {
    /// A client for the service `label` (`web-api`, `ingest-api`, …).
    pub fn builder(label: impl Into<String>) -> ServiceBuilder {
        ServiceBuilder {
            label: label.into(),
            handlers: HashMap::new(),
            ask_timeout: Duration::from_secs(5),
        }
    }

    /// This service's label.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// Waits until the link to the hub is open.
    pub async fn connected(&self) {
        let _ = self.link_state().wait_for(|linked| *linked).await;
    }

    /// Whether the link is open, now and as it changes.
    pub fn link_state(&self) -> watch::Receiver<bool> {
        self.inner.linked.subscribe()
    }

    /// Asks `target` the question `prompt` with `data`, and waits for its reply (at most the
    /// client's ask timeout).
    pub async fn ask(
        &self,
        target: &str,
        prompt: &str,
        data: Value,
    ) -> Result<ApiMessage, AskError> {
        self.ask_within(target, prompt, data, self.inner.ask_timeout)
            .await
    }

    /// [`ask`](Self::ask), waiting at most `timeout`.
    pub async fn ask_within(
        &self,
        target: &str,
        prompt: &str,
        data: Value,
        timeout: Duration,
    ) -> Result<ApiMessage, AskError> {
        let mut question =
            ApiMessage::question(&self.inner.label, target, Package::new(prompt, data));
        let (reply, replied) = oneshot::channel();
        let id = self.inner.pending(|pending| {
            pending.next += 1;
            let id = format!("{:016x}-{}", rand::random::<u64>(), pending.next);
            let waiting = Waiting {
                order: pending.next,
                target: target.to_owned(),
                prompt: prompt.to_owned(),
                reply,
            };
            pending.waiting.insert(id.clone(), waiting);
            id
        });
        question.request_id = Some(id.clone());
        let forget = || self.inner.pending(|pending| pending.waiting.remove(&id));
        if self.send(question).await.is_err() {
            forget();
            return Err(AskError::NotConnected);
        }
        match tokio::time::timeout(timeout, replied).await {
            Ok(Ok(reply)) if reply.is_absent_reply() => Err(AskError::Absent(target.to_owned())),
            Ok(Ok(reply)) => match reply.error() {
                Some(error) => Err(AskError::Refused(error.to_owned())),
                None => Ok(reply),
            },
            Ok(Err(_)) => Err(AskError::NotConnected),
            Err(_) => {
                forget();
                Err(AskError::Timeout {
                    target: target.to_owned(),
                    timeout,
                })
            }
        }
    }

    /// Tells `target` `prompt` with `data`; no reply is expected.
    pub async fn tell(&self, target: &str, prompt: &str, data: Value) -> Result<(), AskError> {
        let message = ApiMessage::message(&self.inner.label, target, Package::new(prompt, data));
        self.send(message).await
    }

    async fn send(&self, message: ApiMessage) -> Result<(), AskError> {
        let link = self
            .inner
            .link
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(AskError::NotConnected)?;
        link.send(message).await.map_err(|_| AskError::NotConnected)
    }
}

impl Inner {
    fn pending<T>(&self, f: impl FnOnce(&mut Pending) -> T) -> T {
        f(&mut self.pending.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn set_link(&self, link: Option<mpsc::Sender<ApiMessage>>) {
        let up = link.is_some();
        *self.link.lock().unwrap_or_else(PoisonError::into_inner) = link;
        if !up {
            // Their replies would have come over the lost link: they fail now, not at their
            // timeout.
            let lost = self.pending(|pending| pending.waiting.len());
            self.pending(|pending| pending.waiting.clear());
            if lost > 0 {
                tracing::warn!(service = self.label, lost, "questions lost with the link");
            }
        }
        self.linked.send_replace(up);
    }

    /// One message for this service: a reply for a waiting question, or something to handle.
    fn dispatch(&self, message: ApiMessage, reply_to: &mpsc::Sender<ApiMessage>) {
        if let Some(prompt) = message.replies_to() {
            let waiting = self.pending(|pending| {
                let id = match &message.request_id {
                    Some(id) if pending.waiting.contains_key(id) => Some(id.clone()),
                    // A legacy reply: the oldest question of that prompt to its sender.
                    _ => pending
                        .waiting
                        .iter()
                        .filter(|(_, w)| w.prompt == prompt && w.target == message.ack)
                        .min_by_key(|(_, w)| w.order)
                        .map(|(id, _)| id.clone()),
                };
                id.and_then(|id| pending.waiting.remove(&id))
            });
            match waiting {
                Some(waiting) => {
                    let _ = waiting.reply.send(message);
                }
                None => tracing::debug!(prompt, "a reply nobody is waiting for"),
            }
            return;
        }
        let question = message.kind == MessageType::Question;
        if message.package.is_status() {
            if question {
                let _ = reply_to.try_send(message.status_reply("alive"));
            }
            return;
        }
        let Some(handler) = self.handlers.get(&message.package.prompt).cloned() else {
            if question {
                let error = format!("{} does not handle {}", self.label, message.package.prompt);
                let _ = reply_to.try_send(message.error_reply(&error));
            }
            return;
        };
        if !question {
            let prompt = message.package.prompt.clone();
            if self.ordered.try_send((handler, message)).is_err() {
                tracing::warn!(
                    service = self.label,
                    prompt,
                    "message dropped: its handlers are too far behind"
                );
            }
            return;
        }
        let reply_to = reply_to.clone();
        tokio::spawn(async move {
            let reply = match handler(message.clone()).await {
                Ok(data) => message.reply(data),
                Err(error) => message.error_reply(&error),
            };
            let _ = reply_to.send(reply).await;
        });
    }
}

/// One-way messages that may wait for their handler.
const ORDERED_QUEUE: usize = 4096;

/// Runs one-way messages' handlers one after the other, until the client is gone.
async fn handle_in_order(mut queue: mpsc::Receiver<(Handler, ApiMessage)>) {
    while let Some((handler, message)) = queue.recv().await {
        let prompt = message.package.prompt.clone();
        if let Err(error) = handler(message).await {
            tracing::debug!(prompt, %error, "a one-way message's handler failed");
        }
    }
}

const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Keeps a link open until the client is gone.
async fn keep_linked(inner: Weak<Inner>, transport: Arc<dyn Transport>) {
    let mut backoff = BACKOFF_FIRST;
    loop {
        let Some(label) = inner.upgrade().map(|i| i.label.clone()) else {
            return;
        };
        match transport.connect(&label).await {
            Ok(Link { send, mut receive }) => {
                backoff = BACKOFF_FIRST;
                tracing::info!(service = label, "linked to the hub");
                if let Some(inner) = inner.upgrade() {
                    inner.set_link(Some(send.clone()));
                }
                while let Some(message) = receive.recv().await {
                    let Some(inner) = inner.upgrade() else {
                        return;
                    };
                    inner.dispatch(message, &send);
                }
                if let Some(inner) = inner.upgrade() {
                    inner.set_link(None);
                }
                tracing::warn!(service = label, "link to the hub lost; reconnecting");
            }
            Err(error) => tracing::warn!(service = label, %error, "cannot link to the hub"),
        }
        // A retry timer, not a wait for an event: the hub is away until it answers.
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}
