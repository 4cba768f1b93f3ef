//! `/metrics` in the Prometheus text exposition format.

use std::fmt::Write;

use roomcast_sfu::Totals;

use crate::edge_metrics::EdgeMetrics;

pub(crate) fn render(t: &Totals, edge: &EdgeMetrics) -> String {
    let mut out = String::with_capacity(4096);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    metric(
        "roomcast_rooms",
        "gauge",
        "Rooms open now.",
        &[("", t.rooms)],
    );
    metric(
        "roomcast_participants",
        "gauge",
        "Participants in rooms now.",
        &[("", t.participants)],
    );
    metric(
        "roomcast_published_tracks",
        "gauge",
        "Tracks participants publish now.",
        &[("", t.published_tracks)],
    );
    metric(
        "roomcast_forwarded_tracks",
        "gauge",
        "Forwarded tracks (one per subscriber and publication) now.",
        &[("", t.forwarded_tracks)],
    );
    metric(
        "roomcast_received_packets_total",
        "counter",
        "RTP packets received from publishers.",
        &[("", t.received_packets)],
    );
    metric(
        "roomcast_received_bytes_total",
        "counter",
        "RTP bytes received from publishers.",
        &[("", t.received_bytes)],
    );
    metric(
        "roomcast_forwarded_packets_total",
        "counter",
        "RTP packets forwarded to subscribers.",
        &[("", t.forwarded_packets)],
    );
    metric(
        "roomcast_forwarded_bytes_total",
        "counter",
        "RTP bytes forwarded to subscribers.",
        &[("", t.forwarded_bytes)],
    );
    metric(
        "roomcast_dropped_packets_total",
        "counter",
        "Packets dropped on the server: a fan-out too far behind its publisher (one drop for all its subscribers), a datagram the kernel refused, a full tap queue.",
        &[("", t.dropped_packets)],
    );
    metric(
        "roomcast_rtcp_feedback_total",
        "counter",
        "RTCP feedback received from subscribers, by type.",
        &[
            ("{type=\"pli\"}", t.pli),
            ("{type=\"fir\"}", t.fir),
            ("{type=\"nack\"}", t.nack),
        ],
    );
    metric(
        "roomcast_data_messages_relayed_total",
        "counter",
        "Data channel messages handed to a recipient (one per recipient).",
        &[("", t.data_relayed)],
    );
    metric(
        "roomcast_data_messages_dropped_total",
        "counter",
        "Data channel messages dropped for a recipient whose backlog was full.",
        &[("", t.data_dropped)],
    );
    let rejected: Vec<(String, u64)> = t
        .data_rejected
        .iter()
        .map(|(reason, n)| (format!("{{reason=\"{reason}\"}}"), *n))
        .collect();
    let rejected: Vec<(&str, u64)> = rejected.iter().map(|(l, n)| (l.as_str(), *n)).collect();
    metric(
        "roomcast_data_messages_rejected_total",
        "counter",
        "Data channel messages refused, by reason.",
        &rejected,
    );
    let errors: Vec<(String, u64)> = edge
        .errors()
        .map(|(code, n)| (format!("{{code=\"{}\"}}", code.as_str()), n))
        .collect();
    let errors: Vec<(&str, u64)> = errors.iter().map(|(l, n)| (l.as_str(), *n)).collect();
    metric(
        "roomcast_signaling_errors_total",
        "counter",
        "Signaling errors sent to clients, by code.",
        &errors,
    );
    let open = u64::try_from(edge.open_connections()).unwrap_or(0);
    metric(
        "roomcast_websocket_connections",
        "gauge",
        "Signaling WebSocket connections open now.",
        &[("", open)],
    );
    metric(
        "roomcast_websocket_connections_total",
        "counter",
        "Signaling WebSocket connections accepted.",
        &[("", edge.connections())],
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_has_help_type_and_samples() {
        let totals = Totals {
            rooms: 2,
            forwarded_packets: 1234,
            nack: 7,
            ..Totals::default()
        };
        let text = render(&totals, &EdgeMetrics::default());
        assert!(text.contains("# TYPE roomcast_rooms gauge\nroomcast_rooms 2\n"));
        assert!(text.contains("roomcast_forwarded_packets_total 1234\n"));
        assert!(text.contains("roomcast_rtcp_feedback_total{type=\"nack\"} 7\n"));
        assert!(text.contains("roomcast_signaling_errors_total{code=\"bad_json\"} 0\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("roomcast_"), "{line}");
            value.parse::<u64>().unwrap();
        }
    }
}
