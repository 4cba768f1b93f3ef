//! The server's side of offer/answer with one client, as a small state machine.
//!
//! The client makes the first offer. Afterwards the server offers whenever its forwarded tracks
//! change; changes that arrive while an offer is out are queued and sent as one offer once the
//! answer is in. On glare the server is the impolite peer: it keeps its own offer and ignores the
//! client's, which the client (polite) rolls back and offers again later.

#[derive(Debug, Default)]
pub(crate) struct Negotiation {
    first_offer_answered: bool,
    awaiting_answer: bool,
    pending_changes: bool,
}

/// What to do with an offer from the client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ClientOffer {
    Answer,
    IgnoreGlare,
}

impl Negotiation {
    pub(crate) fn on_client_offer(&mut self) -> ClientOffer {
        if self.awaiting_answer {
            ClientOffer::IgnoreGlare
        } else {
            ClientOffer::Answer
        }
    }

    pub(crate) fn client_offer_answered(&mut self) {
        self.first_offer_answered = true;
    }

    /// Returns false when no server offer is waiting for this answer.
    pub(crate) fn on_client_answer(&mut self) -> bool {
        std::mem::replace(&mut self.awaiting_answer, false)
    }

    /// The client's answer could not be applied; the offer stays out for a corrected answer.
    pub(crate) fn answer_failed(&mut self) {
        self.awaiting_answer = true;
    }

    /// The server's forwarded tracks changed.
    pub(crate) fn tracks_changed(&mut self) {
        self.pending_changes = true;
    }

    /// Whether the server should make an offer now, given the connection's signaling state.
    pub(crate) fn should_offer(&self, signaling_stable: bool) -> bool {
        self.pending_changes
            && self.first_offer_answered
            && !self.awaiting_answer
            && signaling_stable
    }

    pub(crate) fn offer_sent(&mut self) {
        self.pending_changes = false;
        self.awaiting_answer = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_waits_for_the_clients_first_offer() {
        let mut n = Negotiation::default();
        n.tracks_changed();
        assert!(!n.should_offer(true));
        assert_eq!(n.on_client_offer(), ClientOffer::Answer);
        n.client_offer_answered();
        assert!(n.should_offer(true));
    }

    #[test]
    fn changes_during_an_outstanding_offer_are_sent_after_the_answer() {
        let mut n = Negotiation::default();
        n.client_offer_answered();
        n.tracks_changed();
        n.offer_sent();
        n.tracks_changed();
        assert!(!n.should_offer(true), "one offer at a time");
        assert!(n.on_client_answer());
        assert!(n.should_offer(true), "queued change goes out next");
    }

    #[test]
    fn nothing_is_offered_without_changes_or_outside_stable() {
        let mut n = Negotiation::default();
        n.client_offer_answered();
        assert!(!n.should_offer(true));
        n.tracks_changed();
        assert!(!n.should_offer(false));
    }

    #[test]
    fn on_glare_the_server_keeps_its_offer() {
        let mut n = Negotiation::default();
        n.client_offer_answered();
        n.tracks_changed();
        n.offer_sent();
        assert_eq!(n.on_client_offer(), ClientOffer::IgnoreGlare);
    }

    #[test]
    fn an_answer_without_an_offer_is_refused() {
        let mut n = Negotiation::default();
        assert!(!n.on_client_answer());
    }
}
