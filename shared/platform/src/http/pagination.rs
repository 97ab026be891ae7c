//! Keyset pagination: `?limit=` (default 50, at most 200) and an opaque `cursor`.
//!
//! A cursor is the sort key of the last row a page returned, base64url-encoded JSON. The next page
//! asks for rows strictly after it, so concurrent inserts and deletes never shift a page.

use super::query::Query;
use crate::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;

/// What a list request asks for. `K` is the resource's sort key.
#[derive(Debug, Clone)]
pub struct PageRequest<K> {
    pub limit: usize,
    pub after: Option<K>,
}

impl<K: DeserializeOwned> PageRequest<K> {
    pub fn from_query(query: &Query) -> Result<Self, ApiError> {
        let limit = match query.get("limit") {
            None => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "limit must be a whole number from 1 to {MAX_LIMIT}"
                    ))
                })?,
        };
        let after = query.get("cursor").map(decode_cursor).transpose()?;
        Ok(Self { limit, after })
    }

    /// How many rows to fetch: one more than the page, to learn whether another page follows.
    pub fn fetch_limit(&self) -> i64 {
        self.limit as i64 + 1
    }
}

/// One page of a list: `{"data": [...], "next_cursor": "..." | null}`.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds the page from up to `limit + 1` rows fetched in order; `key` gives a row's sort key.
    pub fn from_rows<K: Serialize>(mut rows: Vec<T>, limit: usize, key: impl Fn(&T) -> K) -> Self {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(|last| encode_cursor(&key(last)))
        } else {
            None
        };
        Self {
            data: rows,
            next_cursor,
        }
    }

    /// A page whose next cursor its caller decided (a walk that stops after a budget of rows may
    /// return fewer than `limit` entries and still have more to walk).
    pub fn with_next<K: Serialize>(data: Vec<T>, next: Option<&K>) -> Self {
        Self {
            data,
            next_cursor: next.map(encode_cursor),
        }
    }

    /// Builds the page from rows fetched with their sort key beside them (a key the
    /// representation does not show, such as a lower-cased name): `cursor` makes the next cursor
    /// from the last row and its key; the keys are dropped.
    pub fn from_keyed_rows<S, K: Serialize>(
        rows: Vec<(T, S)>,
        limit: usize,
        cursor: impl Fn(&T, &S) -> K,
    ) -> Self {
        let page = Page::from_rows(rows, limit, |(row, key)| cursor(row, key));
        Self {
            data: page.data.into_iter().map(|(row, _)| row).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

fn encode_cursor<K: Serialize>(key: &K) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

/// Reads a cursor back. Anything that does not decode into the resource's sort key, or whose
/// parts no column could hold (U+0000, a time PostgreSQL cannot store: [`CursorTime`]), is refused
/// as not one this API issued: a forged or tampered cursor is a 400, never a failed query.
pub fn decode_cursor<K: DeserializeOwned>(raw: &str) -> Result<K, ApiError> {
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .filter(|bytes| !bytes.windows(6).any(|w| w == b"\\u0000"))
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| ApiError::bad_request("cursor is not one this API issued"))
}

/// The time part of a cursor (RFC 3339, as a page wrote it), decoded only when it is a time
/// PostgreSQL can store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct CursorTime(String);

impl TryFrom<String> for CursorTime {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        crm_domain::time::parse(&raw, "cursor")
            .map(|_| Self(raw))
            .map_err(|error| error.message)
    }
}

impl CursorTime {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_page_links_to_the_next() {
        let page = Page::from_rows(vec![1, 2, 3], 2, |n| *n);
        assert_eq!(page.data, vec![1, 2]);
        let cursor = page.next_cursor.unwrap();
        assert_eq!(decode_cursor::<i32>(&cursor).unwrap(), 2);
    }

    #[test]
    fn the_last_page_has_no_cursor() {
        let page = Page::from_rows(vec![1, 2], 2, |n| *n);
        assert!(page.next_cursor.is_none());
    }

    #[test]
    fn limits_are_bounded() {
        for bad in ["0", "201", "-1", "ten"] {
            let query = Query::parse(Some(&format!("limit={bad}")), &["limit"]).unwrap();
            assert!(PageRequest::<i32>::from_query(&query).is_err(), "{bad}");
        }
        let query = Query::parse(None, &["limit"]).unwrap();
        assert_eq!(
            PageRequest::<i32>::from_query(&query).unwrap().limit,
            DEFAULT_LIMIT
        );
    }

    #[test]
    fn cursors_with_what_no_column_holds_are_refused() {
        for forged in [
            serde_json::json!(["0000-01-01T00:00:00Z", 1]),
            serde_json::json!(["yesterday", 1]),
            serde_json::json!(["2026-01-01T00:00:00Z\u{0}", 1]),
        ] {
            let cursor = encode_cursor(&forged);
            assert!(
                decode_cursor::<(CursorTime, i32)>(&cursor).is_err(),
                "{forged}"
            );
        }
        let issued = encode_cursor(&("2026-01-01T00:00:00Z", 1));
        let (time, id) = decode_cursor::<(CursorTime, i32)>(&issued).unwrap();
        assert_eq!((time.as_str(), id), ("2026-01-01T00:00:00Z", 1));
    }

    #[test]
    fn forged_cursors_are_refused() {
        let query = Query::parse(Some("cursor=%21%21"), &["cursor"]).unwrap();
        assert!(PageRequest::<i32>::from_query(&query).is_err());
    }
}
