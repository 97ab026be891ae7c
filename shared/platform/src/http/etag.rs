//! ETags from resource versions, and the conditional headers that compare with them.

use crate::store::expected::ExpectedVersion;
use crate::ApiError;
use http::{header, HeaderMap};

/// The strong ETag of a resource at `version`: `"v3"`.
pub fn for_version(version: i64) -> String {
    format!("\"v{version}\"")
}

fn listed_tags(headers: &HeaderMap, name: header::HeaderName) -> Option<Vec<String>> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/").to_owned())
        .filter(|tag| !tag.is_empty())
        .collect();
    (!values.is_empty()).then_some(values)
}

/// True when `If-None-Match` lists the current version (or `*`): a GET may answer 304.
pub fn if_none_match_hits(headers: &HeaderMap, version: i64) -> bool {
    let current = for_version(version);
    listed_tags(headers, header::IF_NONE_MATCH)
        .is_some_and(|tags| tags.iter().any(|tag| tag == "*" || *tag == current))
}

/// The version an `If-Match` header demands of a change, if any.
///
/// # Errors
/// 412 when the header is present but names no version we could ever have (the client would only
/// ever be told "stale", so it is told now).
pub fn if_match_version(headers: &HeaderMap) -> Result<Option<ExpectedVersion>, ApiError> {
    let Some(tags) = listed_tags(headers, header::IF_MATCH) else {
        return Ok(None);
    };
    if tags.iter().any(|tag| tag == "*") {
        return Ok(Some(ExpectedVersion::Any));
    }
    let versions: Vec<i64> = tags
        .iter()
        .filter_map(|tag| tag.strip_prefix("\"v")?.strip_suffix('"')?.parse().ok())
        .collect();
    if versions.is_empty() {
        return Err(ApiError::PreconditionFailed);
    }
    Ok(Some(ExpectedVersion::Versions(versions)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, value.parse().unwrap());
        headers
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists() {
        assert!(if_none_match_hits(
            &headers(header::IF_NONE_MATCH, "\"v1\", W/\"v2\""),
            2
        ));
        assert!(!if_none_match_hits(
            &headers(header::IF_NONE_MATCH, "\"v1\""),
            2
        ));
        assert!(if_none_match_hits(&headers(header::IF_NONE_MATCH, "*"), 7));
        assert!(!if_none_match_hits(&HeaderMap::new(), 1));
    }

    #[test]
    fn if_match_reads_versions() {
        let wanted = if_match_version(&headers(header::IF_MATCH, "\"v4\""))
            .unwrap()
            .unwrap();
        assert!(wanted.admits(4) && !wanted.admits(5));
        assert_eq!(if_match_version(&HeaderMap::new()).unwrap(), None);
        assert!(if_match_version(&headers(header::IF_MATCH, "\"garbage\"")).is_err());
    }
}
