//! The letters nodes exchange about relayed sessions (JSON in each node's mailbox).

use roomcast_cluster::NodeId;
use serde::{Deserialize, Serialize};

use crate::translate::Update;

/// One letter: which session it is about, who sent it (where replies go), and what it says.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Letter {
    /// Unique in the cluster: the entry node's id and a counter.
    pub session: String,
    pub from: NodeId,
    #[serde(flatten)]
    pub body: Body,
}

/// What a letter says. The entry node sends `join`, `client`, `leave` and `ping`; the owner
/// answers with `joined`, `update`, `pong` and `gone`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Body {
    /// Join `room` for a client the entry node admitted: the identity and rights are the entry
    /// node's verdict (a verified token's subject and grants), never the client's own words.
    Join {
        room: String,
        name: Option<String>,
        /// Set when the server requires room tokens: one participant per identity.
        identity: Option<String>,
        publish: bool,
        subscribe: bool,
    },
    /// A protocol message from the client, already parsed and checked by the entry node.
    Client {
        text: String,
    },
    /// The client left the room, or went away.
    Leave,
    /// The entry node still relays this session.
    Ping,
    /// The join succeeded: `text` is the `joined` message.
    Joined {
        room: String,
        text: String,
    },
    Update {
        update: Update,
    },
    /// The owner still holds this session.
    Pong,
    /// The owner holds no such session (it ended there).
    Gone,
}

impl Letter {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn parse(text: &str) -> Option<Letter> {
        serde_json::from_str(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;

    fn round_trip(body: Body) {
        let letter = Letter {
            session: "n1-7".into(),
            from: NodeId::parse("n1").unwrap(),
            body,
        };
        assert_eq!(Letter::parse(&letter.to_json()), Some(letter));
    }

    #[test]
    fn every_letter_reads_back_as_written() {
        round_trip(Body::Join {
            room: "standup".into(),
            name: Some("Ada".into()),
            identity: None,
            publish: true,
            subscribe: false,
        });
        round_trip(Body::Client {
            text: r#"{"type":"answer","sdp":"v=0"}"#.into(),
        });
        round_trip(Body::Update {
            update: Update::Refusal {
                code: ErrorCode::BadSdp,
                message: "no".into(),
            },
        });
        round_trip(Body::Update {
            update: Update::Left {
                reason: roomcast_sfu::LeaveReason::Kicked,
            },
        });
        round_trip(Body::Update {
            update: Update::Message {
                text: r#"{"type":"recording","active":true}"#.into(),
            },
        });
        for body in [Body::Leave, Body::Ping, Body::Pong, Body::Gone] {
            round_trip(body);
        }
    }

    #[test]
    fn a_letter_that_is_not_one_is_ignored() {
        assert_eq!(Letter::parse("{}"), None);
        assert_eq!(
            Letter::parse(r#"{"session":"s","from":"n1","op":"steal"}"#),
            None
        );
        assert_eq!(Letter::parse("not json"), None);
    }
}
