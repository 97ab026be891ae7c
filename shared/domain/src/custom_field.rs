//! Custom fields: a tenant's own contact fields. A definition names a key (stable, snake_case), a
//! label, a type and its rules (required, unique, a default, length or range bounds, the options
//! of a select); a contact's values live in its `custom` object, each checked against its
//! definition on every write.

use crate::contact::{EmailAddress, PersonName, PhoneNumber};
use crate::error::{FieldError, ValidationErrors};
use crate::ids::CustomFieldId;
use crate::region::Region;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The most definitions (archived ones included) one tenant keeps.
pub const MAX_FIELDS_PER_TENANT: i64 = 200;
/// The most options one select has.
pub const MAX_OPTIONS: usize = 500;
pub const MAX_KEY_CHARS: usize = 63;
pub const MAX_LABEL_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// The longest text of each type unless the definition says less.
pub const MAX_TEXT_CHARS: usize = 1_000;
pub const MAX_LONG_TEXT_CHARS: usize = 65_536;
pub const MAX_URL_CHARS: usize = 2_048;

/// What a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    LongText,
    Number,
    Decimal,
    Boolean,
    Date,
    DateTime,
    SingleSelect,
    MultiSelect,
    Url,
    Email,
    Phone,
}

pub const FIELD_TYPES: &[&str] = &[
    "text",
    "long_text",
    "number",
    "decimal",
    "boolean",
    "date",
    "date_time",
    "single_select",
    "multi_select",
    "url",
    "email",
    "phone",
];

impl FieldType {
    pub fn parse(raw: &str) -> Option<Self> {
        serde_json::from_value(Value::String(raw.to_owned())).ok()
    }

    pub fn as_str(self) -> &'static str {
        FIELD_TYPES[self as usize]
    }

    fn has_length(self) -> bool {
        matches!(self, Self::Text | Self::LongText)
    }

    fn has_range(self) -> bool {
        matches!(self, Self::Number | Self::Decimal)
    }

    fn has_options(self) -> bool {
        matches!(self, Self::SingleSelect | Self::MultiSelect)
    }

    /// Whether values can be required unique within the tenant (one scalar a contact holds).
    fn can_be_unique(self) -> bool {
        matches!(
            self,
            Self::Text | Self::Number | Self::Decimal | Self::Url | Self::Email | Self::Phone
        )
    }
}

/// One option of a select: a stable id (what values hold, so a renamed option keeps its values)
/// and a label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectOption {
    #[serde(default)]
    pub id: String,
    pub label: String,
}

/// A definition as a create body (and a merge patch's result) carries it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomFieldDraft {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub default: Option<Value>,
    #[serde(default)]
    pub min_length: Option<u32>,
    #[serde(default)]
    pub max_length: Option<u32>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub options: Option<Vec<SelectOption>>,
    #[serde(default)]
    pub indexed: bool,
    #[serde(default)]
    pub archived: bool,
}

/// A valid definition.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCustomField {
    pub key: String,
    pub label: String,
    pub kind: FieldType,
    pub description: Option<String>,
    pub required: bool,
    pub unique: bool,
    pub default: Option<Value>,
    pub min_length: Option<u32>,
    pub max_length: Option<u32>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub options: Vec<SelectOption>,
    pub indexed: bool,
    pub archived: bool,
}

impl NewCustomField {
    /// Checks a definition on its own; `region` reads a default phone without a country code.
    pub fn parse(draft: CustomFieldDraft, region: Region) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let key = match draft.key.as_deref() {
            Some(raw) => errors.take(parse_key(raw)),
            None => {
                errors.push(FieldError::new(
                    "/key",
                    "required",
                    "a custom field needs a key",
                ));
                None
            }
        };
        let label = match draft.label {
            Some(raw) => errors
                .take(PersonName::parse(&raw, "/label", MAX_LABEL_CHARS))
                .flatten(),
            None => None,
        };
        if label.is_none() && !errors.0.iter().any(|e| e.field == "/label") {
            errors.push(FieldError::new(
                "/label",
                "required",
                "a custom field needs a label",
            ));
        }
        let description = draft.description.and_then(|raw| {
            errors
                .take(PersonName::parse(
                    &raw,
                    "/description",
                    MAX_DESCRIPTION_CHARS,
                ))
                .flatten()
        });
        let kind = match draft.kind.as_deref() {
            Some(raw) => {
                let kind = FieldType::parse(raw);
                if kind.is_none() {
                    errors.push(FieldError::new(
                        "/type",
                        "invalid_type",
                        format!("must be one of {}", FIELD_TYPES.join(", ")),
                    ));
                }
                kind
            }
            None => {
                errors.push(FieldError::new(
                    "/type",
                    "required",
                    "a custom field needs a type",
                ));
                None
            }
        };
        let mut options = Vec::new();
        if let Some(kind) = kind {
            let misplaced = |errors: &mut ValidationErrors, present: bool, field: &str| {
                if present {
                    errors.push(FieldError::new(
                        field,
                        "not_allowed",
                        format!("a {} field has no {}", kind.as_str(), &field[1..]),
                    ));
                }
            };
            if !kind.has_length() {
                misplaced(&mut errors, draft.min_length.is_some(), "/min_length");
                misplaced(&mut errors, draft.max_length.is_some(), "/max_length");
            }
            if !kind.has_range() {
                misplaced(&mut errors, draft.min.is_some(), "/min");
                misplaced(&mut errors, draft.max.is_some(), "/max");
            }
            if let (Some(min), Some(max)) = (draft.min_length, draft.max_length) {
                if min > max {
                    errors.push(FieldError::new(
                        "/max_length",
                        "invalid_range",
                        "must be at least min_length",
                    ));
                }
            }
            if draft
                .max_length
                .is_some_and(|max| max as usize > limit_of(kind) || max == 0)
            {
                errors.push(FieldError::new(
                    "/max_length",
                    "invalid_range",
                    format!("must be 1 to {}", limit_of(kind)),
                ));
            }
            if let (Some(min), Some(max)) = (draft.min, draft.max) {
                if min > max {
                    errors.push(FieldError::new(
                        "/max",
                        "invalid_range",
                        "must be at least min",
                    ));
                }
            }
            for (bound, field) in [(draft.min, "/min"), (draft.max, "/max")] {
                if bound.is_some_and(|b| {
                    !b.is_finite() || (kind == FieldType::Number && b.fract() != 0.0)
                }) {
                    errors.push(FieldError::new(
                        field,
                        "invalid_range",
                        "must be a finite number (whole for a number field)",
                    ));
                }
            }
            if kind.has_options() {
                match draft.options {
                    Some(raw) => options = errors.take(parse_options(raw)).unwrap_or_default(),
                    None => errors.push(FieldError::new(
                        "/options",
                        "required",
                        "a select needs options",
                    )),
                }
            } else if draft.options.is_some() {
                misplaced(&mut errors, true, "/options");
            }
            if draft.unique && !kind.can_be_unique() {
                errors.push(FieldError::new(
                    "/unique",
                    "not_allowed",
                    format!("a {} field cannot be unique", kind.as_str()),
                ));
            }
            if draft.unique && draft.default.as_ref().is_some_and(|d| !d.is_null()) {
                errors.push(FieldError::new(
                    "/default",
                    "not_allowed",
                    "a unique field has no default",
                ));
            }
        }
        let mut field = Self {
            key: key.unwrap_or_default(),
            label: label.map(PersonName::into_inner).unwrap_or_default(),
            kind: kind.unwrap_or(FieldType::Text),
            description: description.map(PersonName::into_inner),
            required: draft.required,
            unique: draft.unique,
            default: None,
            min_length: draft.min_length,
            max_length: draft.max_length,
            min: draft.min,
            max: draft.max,
            options,
            indexed: draft.indexed,
            archived: draft.archived,
        };
        if errors.is_empty() {
            if let Some(default) = draft.default.filter(|d| !d.is_null()) {
                match field.value(&default, region, "/default") {
                    Ok(value) => field.default = Some(value),
                    Err(error) => errors.push(error),
                }
            }
        }
        errors.into_result(|| field)
    }

    /// Checks `raw`, a value of this field at `pointer`, and returns it as stored: a text trimmed,
    /// an email as its address, a phone in E.164, a time in UTC, a multi-select without repeats.
    pub fn value(&self, raw: &Value, region: Region, pointer: &str) -> Result<Value, FieldError> {
        ValueRules {
            kind: self.kind,
            min_length: self.min_length,
            max_length: self.max_length,
            min: self.min,
            max: self.max,
            options: &self.options,
        }
        .check(raw, region, pointer)
    }
}

/// What a value is checked against: the rules of a definition, borrowed (a new one, or a stored
/// one on every contact write).
struct ValueRules<'a> {
    kind: FieldType,
    min_length: Option<u32>,
    max_length: Option<u32>,
    min: Option<f64>,
    max: Option<f64>,
    options: &'a [SelectOption],
}

impl ValueRules<'_> {
    fn check(&self, raw: &Value, region: Region, pointer: &str) -> Result<Value, FieldError> {
        let invalid = |message: String| FieldError::new(pointer, "invalid_value", message);
        let text = || {
            raw.as_str()
                .map(str::trim)
                .ok_or_else(|| invalid("must be a string".into()))
        };
        match self.kind {
            FieldType::Text | FieldType::LongText => {
                let text = text()?;
                let length = text.chars().count();
                let max = self.max_length.map_or(limit_of(self.kind), |m| m as usize);
                let min = self.min_length.unwrap_or(0) as usize;
                if length < min.max(1) || length > max {
                    return Err(invalid(format!(
                        "must be {} to {max} characters",
                        min.max(1)
                    )));
                }
                let allowed = |c: char| {
                    !c.is_control()
                        || (self.kind == FieldType::LongText && matches!(c, '\n' | '\r' | '\t'))
                };
                if !text.chars().all(allowed) {
                    return Err(invalid("must not contain control characters".into()));
                }
                Ok(Value::String(text.to_owned()))
            }
            FieldType::Number | FieldType::Decimal => {
                let number = raw
                    .as_f64()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| invalid("must be a number".into()))?;
                if self.kind == FieldType::Number && (raw.as_i64().is_none()) {
                    return Err(invalid("must be a whole number".into()));
                }
                if self.min.is_some_and(|min| number < min)
                    || self.max.is_some_and(|max| number > max)
                {
                    return Err(invalid(format!(
                        "must be from {} to {}",
                        self.min.map_or("any".into(), |m| m.to_string()),
                        self.max.map_or("any".into(), |m| m.to_string())
                    )));
                }
                Ok(raw.clone())
            }
            FieldType::Boolean => raw
                .as_bool()
                .map(Value::Bool)
                .ok_or_else(|| invalid("must be true or false".into())),
            FieldType::Date => {
                let text = text()?;
                chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .ok()
                    .filter(|d| (1..=9999).contains(&chrono::Datelike::year(d)))
                    .map(|d| Value::String(d.format("%Y-%m-%d").to_string()))
                    .ok_or_else(|| invalid("must be a date, YYYY-MM-DD".into()))
            }
            FieldType::DateTime => {
                crate::time::parse(text()?, pointer).map(|t| Value::String(crate::time::rfc3339(t)))
            }
            FieldType::SingleSelect => {
                let id = text()?;
                self.option(id)
                    .map(|o| Value::String(o.id.clone()))
                    .ok_or_else(|| invalid("must be the id of one of the field's options".into()))
            }
            FieldType::MultiSelect => {
                let ids = raw
                    .as_array()
                    .ok_or_else(|| invalid("must be an array of option ids".into()))?;
                let mut chosen: Vec<Value> = Vec::with_capacity(ids.len());
                for (index, id) in ids.iter().enumerate() {
                    let option = id
                        .as_str()
                        .and_then(|id| self.option(id.trim()))
                        .ok_or_else(|| {
                            FieldError::new(
                                format!("{pointer}/{index}"),
                                "invalid_value",
                                "must be the id of one of the field's options",
                            )
                        })?;
                    let id = Value::String(option.id.clone());
                    if !chosen.contains(&id) {
                        chosen.push(id);
                    }
                }
                Ok(Value::Array(chosen))
            }
            FieldType::Url => {
                let text = text()?;
                let url = url::Url::parse(text).ok().filter(|u| {
                    matches!(u.scheme(), "http" | "https")
                        && u.host().is_some()
                        && text.len() <= MAX_URL_CHARS
                });
                url.map(|u| Value::String(u.to_string())).ok_or_else(|| {
                    invalid(format!(
                        "must be an http or https URL of at most {MAX_URL_CHARS} characters"
                    ))
                })
            }
            FieldType::Email => EmailAddress::parse(text()?, pointer)
                .map(|email| Value::String(email.as_str().to_owned())),
            FieldType::Phone => PhoneNumber::parse(text()?, region, pointer)
                .map(|phone| Value::String(phone.e164().to_owned())),
        }
    }

    fn option(&self, id: &str) -> Option<&SelectOption> {
        self.options.iter().find(|o| o.id == id)
    }
}

fn limit_of(kind: FieldType) -> usize {
    match kind {
        FieldType::LongText => MAX_LONG_TEXT_CHARS,
        _ => MAX_TEXT_CHARS,
    }
}

/// A key: a lower-case letter, then lower-case letters, digits or `_`; at most 63 characters.
pub fn parse_key(raw: &str) -> Result<String, FieldError> {
    let valid = !raw.is_empty()
        && raw.len() <= MAX_KEY_CHARS
        && raw.starts_with(|c: char| c.is_ascii_lowercase())
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(FieldError::new(
            "/key",
            "invalid_key",
            "must be snake_case: a lower-case letter, then lower-case letters, digits or _, at most 63 characters",
        ))
    }
}

/// Options with unique ids (made from the label when absent) and labels unique whatever their case.
fn parse_options(raw: Vec<SelectOption>) -> Result<Vec<SelectOption>, FieldError> {
    if raw.is_empty() || raw.len() > MAX_OPTIONS {
        return Err(FieldError::new(
            "/options",
            "invalid_options",
            format!("a select has 1 to {MAX_OPTIONS} options"),
        ));
    }
    let mut options: Vec<SelectOption> = Vec::with_capacity(raw.len());
    for (index, option) in raw.into_iter().enumerate() {
        let field = format!("/options/{index}");
        let label = PersonName::parse(&option.label, &format!("{field}/label"), MAX_LABEL_CHARS)?
            .ok_or_else(|| {
                FieldError::new(
                    format!("{field}/label"),
                    "required",
                    "an option needs a label",
                )
            })?
            .into_inner();
        let id = if option.id.trim().is_empty() {
            slug(&label)
        } else {
            option.id.trim().to_owned()
        };
        let id_valid = !id.is_empty()
            && id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !id_valid {
            return Err(FieldError::new(
                format!("{field}/id"),
                "invalid_id",
                "must be 1 to 64 lower-case letters, digits, _ or -",
            ));
        }
        if options
            .iter()
            .any(|o| o.id == id || o.label.to_lowercase() == label.to_lowercase())
        {
            return Err(FieldError::new(
                field,
                "duplicate",
                "options have unique ids and labels",
            ));
        }
        options.push(SelectOption { id, label });
    }
    Ok(options)
}

/// A label as an option id: lower-case ASCII letters and digits, other runs as `_`.
fn slug(label: &str) -> String {
    let mut slug = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('_') && !slug.is_empty() {
            slug.push('_');
        }
    }
    slug.trim_end_matches('_').chars().take(64).collect()
}

/// The custom fields a contact write is checked against, and the values the contact had before
/// (an archived field's value may stay as it was, never be set anew).
#[derive(Debug, Clone, Copy, Default)]
pub struct CustomSchema<'a> {
    pub fields: &'a [CustomField],
    pub previous: Option<&'a Map<String, Value>>,
}

impl CustomSchema<'_> {
    /// The contact's `custom` object as stored: each value checked against its field (at
    /// `/custom/<key>`), nulls dropped, a live field without a value given its default or, when
    /// required, refused.
    pub fn values(
        &self,
        raw: Option<Value>,
        region: Region,
        errors: &mut ValidationErrors,
    ) -> Map<String, Value> {
        let mut values = Map::new();
        let before = errors.0.len();
        match raw {
            None | Some(Value::Null) => {}
            Some(Value::Object(raw)) => {
                for (key, value) in raw {
                    if value.is_null() {
                        continue;
                    }
                    let pointer = format!("/custom/{key}");
                    match self.fields.iter().find(|f| f.key == key) {
                        None => errors.push(FieldError::new(
                            pointer,
                            "unknown_field",
                            "no custom field of this tenant has this key",
                        )),
                        Some(field) if field.archived => {
                            if self.previous.and_then(|p| p.get(&key)) == Some(&value) {
                                values.insert(key, value);
                            } else {
                                errors.push(FieldError::new(
                                    pointer,
                                    "archived",
                                    "this field is archived: its value can be kept or removed, not set",
                                ));
                            }
                        }
                        Some(field) => {
                            if let Some(value) = errors.take(field.value(&value, region, &pointer))
                            {
                                values.insert(key, value);
                            }
                        }
                    }
                }
            }
            Some(_) => errors.push(FieldError::new(
                "/custom",
                "invalid_type",
                "must be an object of custom field values by key",
            )),
        }
        if errors.0.len() == before {
            for field in self.fields.iter().filter(|f| !f.archived) {
                if values.contains_key(&field.key) {
                    continue;
                }
                if let Some(default) = &field.default {
                    values.insert(field.key.clone(), default.clone());
                } else if field.required {
                    errors.push(FieldError::new(
                        format!("/custom/{}", field.key),
                        "required",
                        format!("{} is required", field.label),
                    ));
                }
            }
        }
        values
    }
}

/// A definition as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomField {
    pub id: CustomFieldId,
    pub key: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    pub description: Option<String>,
    pub required: bool,
    pub unique: bool,
    pub default: Option<Value>,
    pub min_length: Option<u32>,
    pub max_length: Option<u32>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub options: Vec<SelectOption>,
    pub indexed: bool,
    pub archived: bool,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl CustomField {
    /// Checks `raw`, a value of this field at `pointer` ([`NewCustomField::value`]).
    pub fn value(&self, raw: &Value, region: Region, pointer: &str) -> Result<Value, FieldError> {
        ValueRules {
            kind: self.kind,
            min_length: self.min_length,
            max_length: self.max_length,
            min: self.min,
            max: self.max,
            options: &self.options,
        }
        .check(raw, region, pointer)
    }

    /// The writable fields as a create body carries them, for JSON Merge Patch.
    pub fn writable_view(&self) -> Value {
        serde_json::json!({
            "key": self.key, "label": self.label, "type": self.kind,
            "description": self.description, "required": self.required, "unique": self.unique,
            "default": self.default, "min_length": self.min_length, "max_length": self.max_length,
            "min": self.min, "max": self.max,
            "options": if self.kind.has_options() { Some(&self.options) } else { None },
            "indexed": self.indexed, "archived": self.archived,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn us() -> Region {
        Region::parse("US").unwrap()
    }

    fn field(value: Value) -> Result<NewCustomField, ValidationErrors> {
        NewCustomField::parse(serde_json::from_value(value).unwrap(), us())
    }

    fn fields_of(value: Value) -> Vec<String> {
        field(value)
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn definitions_check_their_rules_against_their_type() {
        assert!(
            field(
                json!({"key": "tier", "label": "Tier", "type": "single_select",
            "options": [{"label": "Gold"}, {"label": "Silver plus"}]})
            )
            .unwrap()
            .options[1]
                .id
                == "silver_plus"
        );
        assert_eq!(
            fields_of(json!({"key": "Tier", "label": "x", "type": "text"})),
            ["/key"]
        );
        assert_eq!(
            fields_of(json!({"key": "t", "label": "x", "type": "colour"})),
            ["/type"]
        );
        assert_eq!(
            fields_of(json!({"key": "t", "label": "x", "type": "boolean", "max_length": 3})),
            ["/max_length"]
        );
        assert_eq!(
            fields_of(json!({"key": "t", "label": "x", "type": "number", "min": 5, "max": 1})),
            ["/max"]
        );
        assert_eq!(
            fields_of(json!({"key": "t", "label": "x", "type": "single_select"})),
            ["/options"]
        );
        assert_eq!(
            fields_of(
                json!({"key": "t", "label": "x", "type": "multi_select", "unique": true,
            "options": [{"label": "A"}]})
            ),
            ["/unique"]
        );
        assert_eq!(
            fields_of(
                json!({"key": "t", "label": "x", "type": "number", "max": 10, "default": 11})
            ),
            ["/default"]
        );
        assert_eq!(
            fields_of(json!({"key": "t", "label": "x", "type": "single_select",
            "options": [{"label": "A"}, {"label": "a"}]})),
            ["/options/1"]
        );
    }

    #[test]
    fn values_are_checked_and_stored_canonically() {
        let def = |v: Value| field(v).unwrap();
        let text = def(json!({"key": "t", "label": "T", "type": "text", "max_length": 5}));
        assert_eq!(
            text.value(&json!(" abc "), us(), "/custom/t").unwrap(),
            json!("abc")
        );
        assert!(text.value(&json!("abcdef"), us(), "/custom/t").is_err());
        let number = def(json!({"key": "n", "label": "N", "type": "number", "min": 0}));
        assert!(number.value(&json!(1.5), us(), "/custom/n").is_err());
        assert!(number.value(&json!(-1), us(), "/custom/n").is_err());
        let multi = def(json!({"key": "m", "label": "M", "type": "multi_select",
            "options": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}]}));
        assert_eq!(
            multi
                .value(&json!(["b", "a", "b"]), us(), "/custom/m")
                .unwrap(),
            json!(["b", "a"])
        );
        assert_eq!(
            multi
                .value(&json!(["z"]), us(), "/custom/m")
                .unwrap_err()
                .field,
            "/custom/m/0"
        );
        let phone = def(json!({"key": "p", "label": "P", "type": "phone"}));
        assert_eq!(
            phone
                .value(&json!("(415) 555-0100"), us(), "/custom/p")
                .unwrap(),
            json!("+14155550100")
        );
        let date = def(json!({"key": "d", "label": "D", "type": "date"}));
        assert!(date.value(&json!("2026-02-30"), us(), "/custom/d").is_err());
        let url = def(json!({"key": "u", "label": "U", "type": "url"}));
        assert!(url
            .value(&json!("javascript:alert(1)"), us(), "/custom/u")
            .is_err());
    }
}
