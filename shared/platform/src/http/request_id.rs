//! Request ids: a client's `X-Request-Id` is kept when it is safe to echo and log, else one is made.

use http::HeaderMap;

pub const HEADER: &str = "x-request-id";
const MAX_LEN: usize = 128;

/// The client's id when it is 1 to 128 characters of `[A-Za-z0-9._:-]`, otherwise a fresh UUIDv7.
pub fn from_headers(headers: &HeaderMap) -> String {
    headers
        .get(HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_LEN
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, value.parse().unwrap());
        headers
    }

    #[test]
    fn keeps_a_safe_client_id() {
        assert_eq!(from_headers(&headers("abc-123_x.y:z")), "abc-123_x.y:z");
    }

    #[test]
    fn replaces_unsafe_or_oversized_ids() {
        let generated = from_headers(&headers("bad id\"<script>"));
        assert!(uuid::Uuid::parse_str(&generated).is_ok());
        let generated = from_headers(&headers(&"a".repeat(129)));
        assert!(uuid::Uuid::parse_str(&generated).is_ok());
        assert!(uuid::Uuid::parse_str(&from_headers(&HeaderMap::new())).is_ok());
    }
}
