//! The names of roomcast's keys in Redis, in one place.

use crate::NodeId;

pub(crate) const NODE_PREFIX: &str = "roomcast:node:";

pub(crate) fn node(id: &NodeId) -> String {
    format!("{NODE_PREFIX}{}", id.as_str())
}

pub(crate) fn room(room: &str) -> String {
    format!("roomcast:room:{room}")
}

pub(crate) fn mailbox(id: &NodeId) -> String {
    format!("roomcast:mail:{}", id.as_str())
}
