//! Request ids: every request gets one, kept from an incoming `X-Request-Id` when that is a
//! short printable token (a proxy's or a client's), otherwise generated. It is echoed in the
//! response, carried by the request's tracing span (so every log line of the request has it)
//! and written into the audit entries the request makes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response};

pub const HEADER: &str = "x-request-id";
/// Longest incoming id kept; anything longer is replaced.
const MAX_LENGTH: usize = 64;

/// The request's id, as request data.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

/// Whether an incoming id can be kept: 1 to 64 characters of `A-Z a-z 0-9 - _ . : /`, so it
/// cannot forge log lines or headers.
fn acceptable(id: &str) -> bool {
    (1..=MAX_LENGTH).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b))
}

/// A new id: this process's random prefix and a counter (32 hex digits). Unique without a
/// system call per request; an id is a label for log lines, not a secret.
fn new_id() -> Arc<str> {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| crate::secrets::random_hex(8));
    Arc::from(format!(
        "{prefix}{:016x}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

pub async fn assign<E: Endpoint>(next: Arc<E>, mut request: Request) -> poem::Result<Response> {
    let id: Arc<str> = request
        .headers()
        .get(HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| acceptable(id))
        .map(Arc::from)
        .unwrap_or_else(new_id);
    request.set_data(RequestId(id.clone()));
    let mut response = match next.call(request).await {
        Ok(response) => response.into_response(),
        Err(err) => err.into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::acceptable;

    #[test]
    fn new_ids_are_32_hex_digits_and_distinct() {
        let (a, b) = (super::new_id(), super::new_id());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn only_short_printable_tokens_are_kept() {
        assert!(acceptable("f3b2c1d0-aaaa-4bbb-8ccc-0123456789ab"));
        assert!(acceptable("lb-01:1733480000.123"));
        assert!(!acceptable(""));
        assert!(!acceptable(&"a".repeat(65)));
        assert!(!acceptable("two words"));
        assert!(!acceptable("line\nbreak"));
        assert!(!acceptable("émoji"));
    }
}
