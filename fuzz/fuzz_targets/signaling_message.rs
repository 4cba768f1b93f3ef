//! Any WebSocket text frame a client may send: `ClientMessage::parse` must refuse what it cannot
//! understand with one of the protocol's error codes, and never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use roomcast_signaling::{ClientMessage, ErrorCode};

fuzz_target!(|data: &[u8]| {
    // A text frame is UTF-8 by the WebSocket protocol; tungstenite rejects anything else.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ClientMessage::parse(text) {
        Ok(message) => {
            // Parsing is a pure function of the frame.
            assert_eq!(ClientMessage::parse(text), Ok(message));
        }
        Err(error) => {
            assert!(ErrorCode::ALL.contains(&error.code));
            assert!(!error.message.is_empty());
        }
    }
});
