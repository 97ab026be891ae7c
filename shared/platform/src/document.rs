//! JSON documents: typed decoding with unknown fields refused and errors pointed at their field
//! (RFC 6901), and JSON Merge Patch (RFC 7396). Request bodies arrive through
//! [`crate::http::json`]; services decode patched documents here.

use crate::ApiError;
use serde::de::DeserializeOwned;
use serde_path_to_error::{Path, Segment};

/// Deserialises `bytes` as `T`: malformed JSON is a 400 with line and column; a wrong type, a
/// missing or an unknown field is a 422 naming the field as a JSON pointer.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    refuse_nul(bytes)?;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T =
        serde_path_to_error::deserialize(&mut deserializer).map_err(deserialize_error)?;
    deserializer
        .end()
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// Converts an already-parsed JSON value (a patched document) into `T`, pointing errors at fields.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(deserialize_error)
}

fn deserialize_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let pointer = json_pointer(error.path());
    let inner = error.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        ApiError::bad_request(format!("malformed JSON: {inner}"))
    } else {
        field_error(pointer, &inner)
    }
}

/// PostgreSQL text cannot hold U+0000, which JSON can carry escaped (`\u0000`): a document with one
/// in any string or member name is a 422 naming where, before anything reaches a column. Costs a
/// byte scan unless the escape is there.
fn refuse_nul(bytes: &[u8]) -> Result<(), ApiError> {
    let escaped = bytes
        .windows(6)
        .any(|w| w[0] == b'\\' && w[1] == b'u' && &w[2..] == b"0000");
    if !escaped {
        return Ok(());
    }
    // Malformed JSON is reported by the decoding that follows.
    let Ok(document) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(());
    };
    match nul_at(&document, String::new()) {
        Some(pointer) => Err(ApiError::invalid_field(
            &pointer,
            "invalid_characters",
            "must not contain U+0000",
        )),
        None => Ok(()),
    }
}

/// The pointer of the first string or member name under `value` that holds U+0000.
fn nul_at(value: &serde_json::Value, pointer: String) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(text) => text.contains('\0').then_some(pointer),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| nul_at(item, format!("{pointer}/{index}"))),
        Value::Object(members) => members.iter().find_map(|(name, member)| {
            let at = format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1"));
            if name.contains('\0') {
                Some(at)
            } else {
                nul_at(member, at)
            }
        }),
        _ => None,
    }
}

/// Applies a JSON Merge Patch (RFC 7396) to `target`: members set to null are removed, objects
/// merge recursively, anything else (arrays included) replaces.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    use serde_json::Value;
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(fields) = target {
        for (name, value) in patch {
            if value.is_null() {
                fields.remove(name);
            } else {
                merge_patch(fields.entry(name.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

fn field_error(pointer: String, error: &serde_json::Error) -> ApiError {
    let message = error.to_string();
    // serde's message ends with " at line L column C", which means nothing next to a pointer.
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(head, _)| head)
        .to_owned();
    let (field, code) = if let Some(name) = quoted_name(&message, "missing field `") {
        (format!("{pointer}/{name}"), "required")
    } else if message.starts_with("unknown field `") {
        // serde_path_to_error already ends the path with the unknown key.
        (pointer, "unknown_field")
    } else {
        (pointer, "invalid_type")
    };
    ApiError::invalid_field(&field, code, message)
}

fn quoted_name<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    message.strip_prefix(prefix)?.split('`').next()
}

/// `emails[1].address` as the RFC 6901 pointer `/emails/1/address`.
fn json_pointer(path: &Path) -> String {
    path.iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(index.to_string()),
            Segment::Map { key } => Some(key.replace('~', "~0").replace('/', "~1")),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .fold(String::new(), |pointer, segment| pointer + "/" + &segment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: Option<String>,
        #[serde(default)]
        items: Vec<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        address: String,
    }

    fn field_of(error: ApiError) -> (String, &'static str) {
        match error {
            ApiError::Validation(errors) => (errors.0[0].field.clone(), errors.0[0].code),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn u0000_anywhere_is_refused_at_its_field() {
        let error = parse_json::<Outer>(br#"{"items": [{"address": "a\u0000b"}]}"#).unwrap_err();
        assert_eq!(
            field_of(error),
            ("/items/0/address".into(), "invalid_characters")
        );
        let error = parse_json::<serde_json::Value>(br#"{"a/b\u0000": 1}"#).unwrap_err();
        assert_eq!(field_of(error).0, "/a~1b\u{0}");
        // An escaped backslash followed by "u0000" is text, not U+0000.
        assert!(parse_json::<Outer>(br#"{"name": "\\u0000"}"#).is_ok());
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        // The example of RFC 7396 section 3.
        let mut target = serde_json::json!({
            "title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"},
            "tags": ["example", "sample"], "content": "This will be unchanged"
        });
        let patch = serde_json::json!({
            "title": "Hello!", "phoneNumber": "+01-123-456-7890",
            "author": {"familyName": null}, "tags": ["example"]
        });
        merge_patch(&mut target, &patch);
        assert_eq!(
            target,
            serde_json::json!({
                "title": "Hello!", "author": {"givenName": "John"}, "tags": ["example"],
                "content": "This will be unchanged", "phoneNumber": "+01-123-456-7890"
            })
        );
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        let error = parse_json::<Outer>(b"{\"name\": ").unwrap_err();
        assert!(matches!(error, ApiError::BadRequest { .. }));
        let error = parse_json::<Outer>(b"{} trailing").unwrap_err();
        assert!(matches!(error, ApiError::BadRequest { .. }));
    }

    #[test]
    fn unknown_fields_are_pointed_at() {
        let error =
            parse_json::<Outer>(br#"{"items": [{"address": "a", "nick": 1}]}"#).unwrap_err();
        assert_eq!(field_of(error), ("/items/0/nick".into(), "unknown_field"));
        let error = parse_json::<Outer>(br#"{"id": "x"}"#).unwrap_err();
        assert_eq!(field_of(error), ("/id".into(), "unknown_field"));
    }

    #[test]
    fn missing_and_mistyped_fields_are_pointed_at() {
        let error = parse_json::<Outer>(br#"{"items": [{}]}"#).unwrap_err();
        assert_eq!(field_of(error), ("/items/0/address".into(), "required"));
        let error = parse_json::<Outer>(br#"{"name": 5}"#).unwrap_err();
        assert_eq!(field_of(error), ("/name".into(), "invalid_type"));
    }
}
