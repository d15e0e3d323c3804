//! The coordinator without I/O: the control links' text messages, typed, and the [`Scheduler`]
//! that decides what happens to them (time passed in).

mod actions;
mod control;
mod message;
mod report;
mod scheduler;

pub use actions::{Action, Grant, LinkId, ServerAddress, StreamEvent, VerificationId};
pub use control::{
    Capacity, ErrorCode, Inbound, LinkRole, Outbound, ProtocolError, SourceType, StreamIds,
    StreamSelector, valid_id,
};
pub use message::{ControlMessage, MAX_MESSAGE_BYTES, MessageError};
pub use report::{ActiveStream, CapacityReport, ClusterReport, EncoderReport, StreamingServer};
pub use scheduler::{Scheduler, SchedulerConfig};
