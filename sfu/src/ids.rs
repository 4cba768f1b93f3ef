//! Validated identifiers: room ids, participant ids and display names.

use std::fmt;

const MAX_ROOM_LEN: usize = 64;
const MAX_NAME_CHARS: usize = 64;

/// A room id: 1-64 characters of `[A-Za-z0-9_-]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(String);

impl RoomId {
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= MAX_ROOM_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A participant id, random and unique for the server's lifetime; also the MediaStream id of the
/// participant's forwarded tracks.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(String);

impl ParticipantId {
    pub(crate) fn random() -> Self {
        Self(format!("p{:016x}", rand::random::<u64>()))
    }

    /// A chosen id, for tests that want readable ones.
    #[cfg(test)]
    pub(crate) fn from_trusted(id: &str) -> Self {
        Self(id.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A display name: trimmed, at most 64 characters; control characters, text-direction overrides
/// and invisible spaces refused (they let a name pose as another or reorder what follows it).
/// An absent or blank name becomes "Guest".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(s: Option<&str>) -> Option<Self> {
        let s = s.unwrap_or("").trim();
        if s.chars().count() > MAX_NAME_CHARS || s.chars().any(deceptive) {
            return None;
        }
        Some(Self(if s.is_empty() { "Guest" } else { s }.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Characters a name may not hold. The zero-width joiner and non-joiner stay allowed: scripts
/// (Persian, the Indic ones) and emoji sequences need them.
fn deceptive(c: char) -> bool {
    c.is_control()
        || matches!(c,
            // Bidi embeddings, overrides and isolates, and the direction marks.
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
            // Zero-width and invisible spaces.
            | '\u{200B}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{180E}' | '\u{115F}' | '\u{1160}'
            | '\u{3164}' | '\u{FFA0}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_allow_letters_digits_underscore_dash() {
        assert!(RoomId::parse("Team_room-42").is_some());
        assert!(RoomId::parse(&"a".repeat(64)).is_some());
    }

    #[test]
    fn room_ids_refuse_empty_long_and_other_characters() {
        for bad in ["", "a b", "room/1", "é", "<script>", "a.b"] {
            assert!(RoomId::parse(bad).is_none(), "{bad:?} accepted");
        }
        assert!(RoomId::parse(&"a".repeat(65)).is_none());
    }

    #[test]
    fn names_default_to_guest_and_are_trimmed() {
        assert_eq!(DisplayName::parse(None).unwrap().as_str(), "Guest");
        assert_eq!(DisplayName::parse(Some("   ")).unwrap().as_str(), "Guest");
        assert_eq!(DisplayName::parse(Some(" Ada ")).unwrap().as_str(), "Ada");
    }

    #[test]
    fn names_count_characters_not_bytes() {
        assert!(DisplayName::parse(Some(&"é".repeat(64))).is_some());
        assert!(DisplayName::parse(Some(&"é".repeat(65))).is_none());
        assert!(DisplayName::parse(Some("a\nb")).is_none());
    }

    #[test]
    fn names_cannot_reorder_text_or_hide_characters() {
        for bad in [
            "evil\u{202E}gnp.exe",
            "a\u{2066}b",
            "Ad\u{200B}a",
            "\u{FEFF}Ada",
            "Ada\u{200F}",
        ] {
            assert!(DisplayName::parse(Some(bad)).is_none(), "{bad:?}");
        }
        for good in [
            "Ada Lovelace",
            "مهدی\u{200C}زاده",
            "👩\u{200D}💻 Ada",
            "李雷",
        ] {
            assert!(DisplayName::parse(Some(good)).is_some(), "{good:?}");
        }
    }

    #[test]
    fn participant_ids_are_distinct() {
        assert_ne!(ParticipantId::random(), ParticipantId::random());
    }
}
