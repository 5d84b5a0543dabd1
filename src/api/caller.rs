//! Who is calling, for rate limits and the audit trail: the user agent, and the client's IP
//! address: the socket peer, or, when that peer is a trusted proxy, the nearest untrusted
//! address in `X-Forwarded-For` (the rest of that header is whatever the client chose to send).

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use poem::http::header::USER_AGENT;
use poem::{FromRequest, Request, RequestBody};

use crate::service::audit::Caller;

/// `server.trusted_proxies`, parsed once at startup and attached as request data.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Arc<Vec<IpNet>>);

impl TrustedProxies {
    pub fn from_config(proxies: &[IpNet]) -> Self {
        Self(Arc::new(proxies.to_vec()))
    }

    /// Whether the request came straight from one of the trusted proxies.
    pub fn forwarded(&self, request: &Request) -> bool {
        peer_ip(request).is_some_and(|peer| trusts(&self.0, &peer))
    }
}

/// The socket peer's address (a proxy's, when there is one in front).
fn peer_ip(request: &Request) -> Option<IpAddr> {
    request.remote_addr().as_socket_addr().map(|addr| addr.ip())
}

fn trusts(trusted: &[IpNet], ip: &IpAddr) -> bool {
    trusted.iter().any(|net| net.contains(ip))
}

/// The client's address: the peer's, or the one a trusted proxy forwarded.
pub fn client_ip(request: &Request) -> Option<IpAddr> {
    let peer = peer_ip(request)?;
    let trusted = match request.data::<TrustedProxies>() {
        Some(trusted) if trusts(&trusted.0, &peer) => trusted,
        _ => return Some(peer),
    };
    let forwarded = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    Some(client_address(peer, &forwarded, &trusted.0))
}

impl<'a> FromRequest<'a> for Caller {
    async fn from_request(request: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let ip = client_ip(request);
        let user_agent = request
            .headers()
            .get(USER_AGENT)
            .and_then(|value| value.to_str().ok());
        let request_id = request
            .data::<crate::api::edge::request_id::RequestId>()
            .map(|id| &*id.0);
        Ok(Caller::new(ip, user_agent).with_request_id(request_id))
    }
}

fn client_address(peer: IpAddr, forwarded: &str, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusts(trusted, ip);
    if !is_trusted(&peer) {
        return peer;
    }
    // Walk back from the proxy nearest to us; the first address it did not vouch for is the
    // client. Garbage in the header ends the walk at the last address we could trust.
    let mut client = peer;
    for hop in forwarded
        .rsplit(',')
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
    {
        let Ok(ip) = hop.parse::<IpAddr>() else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_behind_trusted_proxies() {
        let trusted = TrustedProxies::from_config(&[
            "10.0.0.0/8".parse().unwrap(),
            "192.168.1.5/32".parse().unwrap(),
        ])
        .0;
        // Direct client: the header is the client's own word and is ignored.
        assert_eq!(
            client_address(ip("203.0.113.7"), "1.2.3.4", &trusted),
            ip("203.0.113.7")
        );
        // Behind one proxy: the address it saw.
        assert_eq!(
            client_address(ip("10.1.1.1"), "198.51.100.9", &trusted),
            ip("198.51.100.9")
        );
        // A spoofed entry before the real one is not believed.
        assert_eq!(
            client_address(
                ip("10.1.1.1"),
                "6.6.6.6, 198.51.100.9, 192.168.1.5",
                &trusted
            ),
            ip("198.51.100.9")
        );
        // No proxies configured: never the header.
        assert_eq!(
            client_address(ip("10.1.1.1"), "198.51.100.9", &[]),
            ip("10.1.1.1")
        );
        // Garbage stops the walk at the last trustworthy hop.
        assert_eq!(
            client_address(ip("10.1.1.1"), "junk", &trusted),
            ip("10.1.1.1")
        );
    }
}
