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
    /// Server offers sent so far.
    offers: u64,
    /// The number of the last server offer the client answered.
    answered: u64,
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

    /// Whether the first offer and answer are done.
    pub(crate) fn started(&self) -> bool {
        self.first_offer_answered
    }

    /// Returns false when no server offer is waiting for this answer.
    pub(crate) fn on_client_answer(&mut self) -> bool {
        let expected = std::mem::replace(&mut self.awaiting_answer, false);
        if expected {
            self.answered = self.offers;
        }
        expected
    }

    /// Server offers sent so far: a change made now reaches the client with a later one.
    pub(crate) fn offers_sent(&self) -> u64 {
        self.offers
    }

    /// Whether the client has answered an offer made after `offers` had been sent, i.e. one that
    /// carried every change made at that point.
    pub(crate) fn settled_since(&self, offers: u64) -> bool {
        self.answered > offers
    }

    /// The client's answer could not be applied; the offer stays out for a corrected answer.
    pub(crate) fn answer_failed(&mut self) {
        self.awaiting_answer = true;
        // Offers go out one at a time, so the one before this was answered.
        self.answered = self.offers.saturating_sub(1);
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
        self.offers += 1;
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
    fn a_change_is_settled_once_an_offer_made_after_it_is_answered() {
        let mut n = Negotiation::default();
        n.client_offer_answered();
        n.tracks_changed();
        n.offer_sent();
        // A change while offer 1 is out is not in it.
        let change = n.offers_sent();
        n.tracks_changed();
        assert!(n.on_client_answer());
        assert!(!n.settled_since(change), "offer 1 predates the change");
        n.offer_sent();
        assert!(!n.settled_since(change), "offer 2 is not answered yet");
        assert!(n.on_client_answer());
        assert!(n.settled_since(change));
    }

    #[test]
    fn a_failed_answer_settles_nothing() {
        let mut n = Negotiation::default();
        n.client_offer_answered();
        let change = n.offers_sent();
        n.tracks_changed();
        n.offer_sent();
        n.answer_failed();
        assert!(!n.settled_since(change));
    }

    #[test]
    fn an_answer_without_an_offer_is_refused() {
        let mut n = Negotiation::default();
        assert!(!n.on_client_answer());
    }
}
