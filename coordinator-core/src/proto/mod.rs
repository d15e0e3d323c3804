//! The coordinator's wire protocol, without I/O: the control links' text messages, typed.

mod control;
mod message;

pub use control::{
    Capacity, ErrorCode, Inbound, LinkRole, Outbound, ProtocolError, SourceType, StreamIds,
    StreamSelector, valid_id,
};
pub use message::{ControlMessage, MAX_MESSAGE_BYTES, MessageError};
