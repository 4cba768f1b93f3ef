//! What a participant may do in its room, as granted by the room access token it joined with.

/// A participant's rights. Without room tokens everyone may do everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grants {
    /// Its tracks are forwarded to the others.
    pub publish: bool,
    /// It receives the others' tracks.
    pub subscribe: bool,
}

impl Grants {
    pub const ALL: Grants = Grants {
        publish: true,
        subscribe: true,
    };
}

impl Default for Grants {
    fn default() -> Self {
        Self::ALL
    }
}
