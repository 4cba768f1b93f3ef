//! Which pages may open the signaling WebSocket: a browser names the page's origin in `Origin`,
//! and a page of another site must not use a visitor's browser (and network position) to join
//! rooms. Origins compare by scheme, host and port, default ports filled in.

use axum::http::header::{HOST, ORIGIN};
use axum::http::HeaderMap;

/// Browsers always send `Origin` on a WebSocket handshake; other clients may not, and can forge
/// it anyway, so only a present, foreign Origin is refused. That stops other sites' pages from
/// using a visitor's browser to join rooms. By default an Origin must match the request in scheme
/// (`https` on the HTTPS listener, `http` on the HTTP one), host and port.
pub(crate) fn origin_allowed(headers: &HeaderMap, allowed: &[String], tls: Option<bool>) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let Some(origin) = Origin::parse(origin) else {
        return false;
    };
    if !allowed.is_empty() {
        return allowed
            .iter()
            .any(|a| Origin::parse(a).as_ref() == Some(&origin));
    }
    let scheme = match tls {
        Some(true) => "https",
        Some(false) => "http",
        // Served some other way: the scheme is unknown, the Origin's is assumed.
        None => origin.scheme.as_str(),
    };
    let own = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|host| Origin::parse(&format!("{scheme}://{host}")));
    own.as_ref() == Some(&origin)
}

/// A web origin, with the scheme's default port filled in and names in lower case.
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    fn parse(origin: &str) -> Option<Self> {
        let (scheme, rest) = origin.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let (host, port) = match rest.strip_prefix('[') {
            Some(bracketed) => {
                let (host, after) = bracketed.split_once(']')?;
                (host, after.strip_prefix(':'))
            }
            None => match rest.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            },
        };
        let port = match port {
            Some(port) => port.parse().ok()?,
            None => default_port,
        };
        if host.is_empty() || host.contains(['/', '@', '?', '#']) {
            return None;
        }
        Some(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, host.parse().unwrap());
        if let Some(origin) = origin {
            h.insert(ORIGIN, origin.parse().unwrap());
        }
        h
    }

    const HTTPS: Option<bool> = Some(true);
    const HTTP: Option<bool> = Some(false);

    #[test]
    fn by_default_only_pages_of_this_server_may_connect() {
        let allowed = |origin, host, tls| origin_allowed(&headers(Some(origin), host), &[], tls);
        assert!(allowed(
            "https://meet.example.org",
            "meet.example.org",
            HTTPS
        ));
        assert!(allowed(
            "https://meet.example.org",
            "meet.example.org:443",
            HTTPS
        ));
        assert!(allowed(
            "HTTPS://Meet.Example.org",
            "meet.example.org",
            HTTPS
        ));
        assert!(allowed("http://127.0.0.1:8080", "127.0.0.1:8080", HTTP));
        assert!(allowed("http://[::1]:8080", "[::1]:8080", HTTP));
        assert!(!allowed("https://evil.example", "meet.example.org", HTTPS));
        assert!(!allowed("http://127.0.0.1:9999", "127.0.0.1:8080", HTTP));
        assert!(!allowed("null", "meet.example.org", HTTPS));
    }

    #[test]
    fn the_scheme_and_port_count_too() {
        let allowed = |origin, host, tls| origin_allowed(&headers(Some(origin), host), &[], tls);
        assert!(!allowed(
            "http://meet.example.org",
            "meet.example.org",
            HTTPS
        ));
        assert!(!allowed("https://127.0.0.1:8080", "127.0.0.1:8080", HTTP));
        assert!(!allowed(
            "https://meet.example.org:8443",
            "meet.example.org",
            HTTPS
        ));
        assert!(!allowed(
            "http://meet.example.org",
            "meet.example.org:8080",
            HTTP
        ));
        assert!(!allowed(
            "http://a@meet.example.org",
            "meet.example.org",
            HTTP
        ));
    }

    #[test]
    fn a_configured_list_replaces_the_default() {
        let allowed = ["https://app.example.org".to_owned()];
        assert!(origin_allowed(
            &headers(Some("https://app.example.org"), "sfu.example.org"),
            &allowed,
            HTTP
        ));
        assert!(origin_allowed(
            &headers(Some("https://app.example.org:443"), "sfu.example.org"),
            &allowed,
            HTTP
        ));
        assert!(!origin_allowed(
            &headers(Some("https://sfu.example.org"), "sfu.example.org"),
            &allowed,
            HTTPS
        ));
    }

    #[test]
    fn clients_that_send_no_origin_are_not_browsers_and_pass() {
        assert!(origin_allowed(
            &headers(None, "meet.example.org"),
            &[],
            HTTPS
        ));
    }
}
