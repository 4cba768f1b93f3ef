//! The JSON a client writes on its `data` channel and the JSON each recipient reads.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::DataRejection;
use crate::ParticipantId;

/// A client's message, read without copying its payload.
#[derive(Debug)]
pub(crate) struct Envelope<'a> {
    pub(crate) payload: &'a RawValue,
    /// Recipients by participant id; `None` means everyone else in the room.
    pub(crate) to: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    payload: &'a RawValue,
    #[serde(default)]
    to: Option<Vec<String>>,
}

impl<'a> Envelope<'a> {
    pub(crate) fn parse(text: &'a str) -> Result<Self, DataRejection> {
        let wire: Wire<'a> = serde_json::from_str(text).map_err(|e| {
            if e.is_data() {
                DataRejection::Invalid("expected {\"payload\": <any JSON>, \"to\": [\"<id>\", …]}")
            } else {
                DataRejection::BadJson(e.to_string())
            }
        })?;
        Ok(Self {
            payload: wire.payload,
            to: wire.to,
        })
    }

    /// What each recipient reads: the sender's id and the payload as the sender wrote it.
    pub(crate) fn delivery(&self, from: &ParticipantId) -> Arc<str> {
        // Participant ids are the server's own (letters and digits), so they need no escaping;
        // serializing them anyway keeps that an assumption nobody has to check.
        let from = serde_json::to_string(from.as_str()).unwrap_or_else(|_| "\"\"".to_owned());
        format!(r#"{{"from":{from},"payload":{}}}"#, self.payload.get()).into()
    }
}
