//! Advanced contact search (`POST /api/v1/contacts/search`): a bounded tree of `and` / `or` /
//! `not` over typed conditions, a full-text and typo-tolerant `q`, a sort on any sortable field
//! (custom ones too), keyset pages and an optional total. The filters of `GET /api/v1/contacts`
//! are read into the same tree ([`crate::contact::filter::ContactFilter::conditions`]), so one
//! engine answers both.
//!
//! Reading checks everything a query could fail on (field names, operators per field, value
//! types, custom field definitions, bounds), each error naming its JSON pointer: what reaches the
//! database is well typed.

use crate::contact::{EmailAddress, LifecycleStage, PhoneNumber};
use crate::custom_field::{CustomField, FieldType};
use crate::error::{FieldError, ValidationErrors};
use crate::ids::{ContactId, ListId, TagId};
use crate::region::Region;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How deep `and` / `or` / `not` may nest.
pub const MAX_DEPTH: usize = 5;
/// How many conditions one tree may hold.
pub const MAX_CONDITIONS: usize = 50;
/// How many values one `in` / `not_in` may list.
pub const MAX_VALUES: usize = 100;
/// The longest `q`, and the longest text a condition compares.
pub const MAX_TEXT_CHARS: usize = 200;
/// Below this many matches a total is exact; at and above it, the planner's estimate.
pub const EXACT_COUNT_LIMIT: i64 = 10_000;

/// A condition's operator, as the request names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Neq,
    In,
    NotIn,
    Lt,
    Lte,
    Gt,
    Gte,
    Between,
    Contains,
    StartsWith,
    IsEmpty,
    Exists,
}

const OPERATORS: &[(&str, Operator)] = &[
    ("eq", Operator::Eq),
    ("neq", Operator::Neq),
    ("in", Operator::In),
    ("not_in", Operator::NotIn),
    ("lt", Operator::Lt),
    ("lte", Operator::Lte),
    ("gt", Operator::Gt),
    ("gte", Operator::Gte),
    ("between", Operator::Between),
    ("contains", Operator::Contains),
    ("starts_with", Operator::StartsWith),
    ("is_empty", Operator::IsEmpty),
    ("exists", Operator::Exists),
];

impl Operator {
    fn parse(raw: &str) -> Option<Self> {
        OPERATORS
            .iter()
            .find(|(name, _)| *name == raw)
            .map(|(_, op)| *op)
    }

    fn name(self) -> &'static str {
        OPERATORS
            .iter()
            .find(|(_, op)| *op == self)
            .map_or("", |(name, _)| name)
    }
}

/// A filter tree. Negation is explicit: `neq`, `not_in`, `is_empty` and `exists: false` read as
/// `Not` of the positive condition, which a contact without the value satisfies.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    Condition(Condition),
}

/// One positive test on one target.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub target: Target,
    pub test: Test,
}

/// What a condition looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A text column of the contact; `fold`: compared lower-cased.
    Text {
        column: &'static str,
        fold: bool,
    },
    /// A time column of the contact (`created_at`, `updated_at`, `last_contacted_at`).
    Time(&'static str),
    /// Any of the contact's emails, by its duplicate key.
    Email,
    /// Any of the contact's phones, in E.164.
    Phone,
    Tags,
    Lists,
    PreferredChannel,
    /// The contact's language: a tag matches itself and every more specific tag (`pt`: `pt-BR`).
    Language,
    /// The channels the contact asked not to be contacted on.
    DoNotContact,
    /// The status of the contact's latest consent record for the purpose.
    Consent(String),
    /// A custom field's value.
    Custom {
        key: String,
        kind: CustomKind,
    },
}

/// How a custom field's values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomKind {
    /// Text compared as text (text, long text, URL, email, phone, single select, and dates and
    /// date-times, which are stored in a form whose text order is their time order).
    Text,
    Number,
    Boolean,
    /// An array of option ids.
    MultiSelect,
}

impl CustomKind {
    fn of(kind: FieldType) -> Self {
        match kind {
            FieldType::Number | FieldType::Decimal => Self::Number,
            FieldType::Boolean => Self::Boolean,
            FieldType::MultiSelect => Self::MultiSelect,
            _ => Self::Text,
        }
    }
}

/// A positive test, its values normalized to what is stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// `eq` (one value) or `in`: equal to one of these. For a target holding several values
    /// (emails, tags, multi-select options…) at least one of them is.
    OneOf(Vec<Value>),
    /// `lt`, `lte`, `gt`, `gte`, `between` (inclusive): within the bounds.
    Range {
        lower: Option<Bound>,
        upper: Option<Bound>,
    },
    /// Contains this text, case-insensitively.
    Contains(String),
    /// Starts with this text, case-insensitively.
    StartsWith(String),
    /// Has a value (`exists`; `is_empty` is its negation).
    Present,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    pub value: Value,
    pub inclusive: bool,
}

/// The members a search request's body may hold.
pub const MEMBERS: &[&str] = &[
    "filter",
    "q",
    "sort",
    "limit",
    "cursor",
    "count",
    "include_deleted",
];

/// What a field of the sort compares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by", content = "field")]
pub enum SortBy {
    /// Full-text rank plus trigram similarity to `q`.
    Relevance,
    /// A time column.
    Time(String),
    /// A text column, lower-cased.
    Text(String),
    /// A custom field, by key and how it compares.
    Custom(String, SortKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKind {
    Text,
    Number,
    Boolean,
}

impl SortKind {
    /// How a field of type `kind` sorts; `None` for long texts and multi-selects, which do not.
    pub fn of(kind: FieldType) -> Option<Self> {
        match (kind, CustomKind::of(kind)) {
            (FieldType::LongText, _) | (_, CustomKind::MultiSelect) => None,
            (_, CustomKind::Text) => Some(Self::Text),
            (_, CustomKind::Number) => Some(Self::Number),
            (_, CustomKind::Boolean) => Some(Self::Boolean),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchSort {
    pub by: SortBy,
    pub descending: bool,
}

/// The standard fields a search may sort by (and `custom.<key>`, and `relevance` with `q`).
pub const SORT_FIELDS: &[&str] = &[
    "created_at",
    "updated_at",
    "last_contacted_at",
    "first_name",
    "last_name",
    "display_name",
    "company",
];

/// Where a page of a search ended: the sort it was made under, its last row's key and id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchCursor {
    pub sort: SearchSort,
    pub key: String,
    pub id: ContactId,
}

/// The words of `q`: each must match, as a prefix of a word of the contact's search document or,
/// if it has [`FUZZY_WORD_CHARS`] or more, approximately (trigram word similarity) in its names and
/// emails.
#[derive(Debug, Clone, PartialEq)]
pub struct TextQuery {
    /// Lower-cased, letters and digits only, at most [`MAX_WORDS`].
    pub words: Vec<String>,
    /// Which words are also matched approximately: at first those of [`FUZZY_WORD_CHARS`] or
    /// more; [`TextQuery::found_exactly`] then keeps only those no search document holds, because
    /// a word found as it is needs no typo forgiven, and its trigram matches would cost a
    /// thousand times its exact ones.
    pub fuzzy: Vec<bool>,
    /// Whether each word still fuzzy is known to be held by no search document (the storage
    /// checked, [`TextQuery::checked`]): such a word can match only approximately, and is matched
    /// by similarity alone.
    pub checked: bool,
    /// `word:* & word:*`: the whole query, for ranking.
    pub tsquery: String,
    /// `q` lower-cased, its spaces collapsed (the trigram side of ranking).
    pub text: String,
}

/// How many words of `q` count.
pub const MAX_WORDS: usize = 8;
/// The shortest word matched approximately too: a shorter one has too few trigrams to be told
/// from another.
pub const FUZZY_WORD_CHARS: usize = 4;
/// The shortest fuzzy word compared with whole words only (strict word similarity): in a long
/// word, a typo leaves most trigrams intact, and what merely shares its start (`hamilton123456`
/// for `hamilton567314`) is no match.
pub const WHOLE_WORD_CHARS: usize = 8;

/// A checked search.
#[derive(Debug, Clone)]
pub struct Search {
    pub filter: Option<Node>,
    pub q: Option<TextQuery>,
    pub sort: SearchSort,
    pub limit: usize,
    pub after: Option<SearchCursor>,
    pub count: bool,
    pub include_deleted: bool,
}

/// What reading a search needs to know of the tenant.
pub struct SearchContext<'a> {
    /// Every custom field definition, archived ones too (their values are still stored).
    pub fields: &'a [CustomField],
    /// Reads phone values written without a country code.
    pub region: Region,
    /// Decodes a cursor the client sent back (opaque to this module).
    pub decode_cursor: &'a (dyn Fn(&str) -> Option<SearchCursor> + Sync),
}

impl Search {
    /// Checks `draft` and reads it into a search; every error names its JSON pointer.
    pub fn parse(body: &Value, context: &SearchContext) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let Some(body) = body.as_object() else {
            errors.push(FieldError::new(
                "",
                "invalid_type",
                "the body must be a JSON object",
            ));
            return Err(errors);
        };
        for name in body.keys().filter(|name| !MEMBERS.contains(&name.as_str())) {
            errors.push(FieldError::new(
                format!("/{name}"),
                "unknown_member",
                format!("a search holds {}", MEMBERS.join(", ")),
            ));
        }
        let member = |name: &str| body.get(name).filter(|v| !v.is_null());
        let q = match member("q") {
            None => None,
            Some(Value::String(raw)) => errors.take(text_query(raw)),
            Some(_) => {
                errors.push(FieldError::new("/q", "invalid_type", "must be a string"));
                None
            }
        };
        let filter = match member("filter") {
            None => None,
            Some(raw) => {
                let mut reader = TreeReader {
                    context,
                    conditions: 0,
                    errors: &mut errors,
                };
                reader.node(raw, "/filter", 1)
            }
        };
        let sort = errors.take(sort(member("sort"), q.is_some(), context.fields));
        let limit = match member("limit") {
            None => Some(DEFAULT_LIMIT),
            Some(raw) => errors.take(
                raw.as_u64()
                    .filter(|n| (1..=MAX_LIMIT as u64).contains(n))
                    .map(|n| n as usize)
                    .ok_or_else(|| {
                        FieldError::new(
                            "/limit",
                            "invalid_value",
                            format!("must be a whole number from 1 to {MAX_LIMIT}"),
                        )
                    }),
            ),
        };
        let flag = |raw: Option<&Value>, pointer: &str, errors: &mut ValidationErrors| match raw {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                errors.push(FieldError::new(
                    pointer,
                    "invalid_type",
                    "must be true or false",
                ));
                false
            }
        };
        let count = flag(member("count"), "/count", &mut errors);
        let include_deleted = flag(member("include_deleted"), "/include_deleted", &mut errors);
        let after = match member("cursor") {
            None => None,
            Some(Value::String(raw)) => errors.take(
                (context.decode_cursor)(raw)
                    .filter(|cursor| sort.as_ref().is_some_and(|s| cursor_fits(cursor, s)))
                    .map(Some)
                    .ok_or_else(|| {
                        FieldError::new(
                            "/cursor",
                            "invalid_cursor",
                            "is not a cursor this search issued under this sort; start again without it",
                        )
                    }),
            )
            .flatten(),
            Some(_) => {
                errors.push(FieldError::new("/cursor", "invalid_type", "must be a string"));
                None
            }
        };
        errors.into_result(|| Self {
            filter,
            q,
            sort: sort.expect("no error, so a sort"),
            limit: limit.expect("no error, so a limit"),
            after,
            count,
            include_deleted,
        })
    }
}

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;

/// Whether `cursor` was issued under `sort` and holds a key of the sort's type (a tampered cursor
/// is a 422, never a failed cast in the database).
fn cursor_fits(cursor: &SearchCursor, sort: &SearchSort) -> bool {
    if cursor.sort != *sort || cursor.key.contains('\0') || cursor.key.len() > 4096 {
        return false;
    }
    match &sort.by {
        SortBy::Time(_) => {
            cursor.key == "-infinity" || crate::time::parse(&cursor.key, "cursor").is_ok()
        }
        SortBy::Relevance => cursor.key.parse::<f32>().is_ok_and(f32::is_finite),
        SortBy::Custom(_, SortKind::Number) => {
            cursor.key == "-Infinity" || cursor.key.parse::<f64>().is_ok_and(f64::is_finite)
        }
        SortBy::Text(_) | SortBy::Custom(..) => true,
    }
}

fn text_query(raw: &str) -> Result<TextQuery, FieldError> {
    let invalid = |message: &str| FieldError::new("/q", "invalid_value", message);
    if raw.chars().count() > MAX_TEXT_CHARS {
        return Err(invalid("must be at most 200 characters"));
    }
    let lower = raw.to_lowercase();
    // An email's words are those of its local part: its domain is shared by thousands of
    // contacts and would only slow the matching down (it still counts in the ranking).
    let words: Vec<String> = lower
        .split_whitespace()
        .map(|token| token.split('@').next().unwrap_or(token))
        .flat_map(|token| token.split(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .take(MAX_WORDS)
        .map(str::to_owned)
        .collect();
    if words.is_empty() {
        return Err(invalid("must hold at least one word of letters or digits"));
    }
    Ok(TextQuery {
        tsquery: words
            .iter()
            .map(|w| format!("{w}:*"))
            .collect::<Vec<_>>()
            .join(" & "),
        text: lower.split_whitespace().collect::<Vec<_>>().join(" "),
        fuzzy: words
            .iter()
            .map(|w| w.chars().count() >= FUZZY_WORD_CHARS)
            .collect(),
        checked: false,
        words,
    })
}

impl TextQuery {
    /// The words still to be matched approximately, by position.
    pub fn fuzzy_words(&self) -> impl Iterator<Item = (usize, &str)> {
        self.words
            .iter()
            .zip(&self.fuzzy)
            .enumerate()
            .filter(|(_, (_, fuzzy))| **fuzzy)
            .map(|(index, (word, _))| (index, word.as_str()))
    }

    /// Records that the word at `index` is found exactly (as a prefix), so is not matched
    /// approximately.
    pub fn found_exactly(&mut self, index: usize) {
        if let Some(fuzzy) = self.fuzzy.get_mut(index) {
            *fuzzy = false;
        }
    }

    /// Records that every word was looked for as it is, and those still fuzzy are held by no
    /// search document.
    pub fn checked(&mut self) {
        self.checked = true;
    }
}

fn sort(
    raw: Option<&Value>,
    has_q: bool,
    fields: &[CustomField],
) -> Result<SearchSort, FieldError> {
    let invalid = |message: String| FieldError::new("/sort", "invalid_sort", message);
    let raw = match raw {
        None if has_q => "relevance",
        None => "created_at",
        Some(Value::String(raw)) => raw.as_str(),
        Some(_) => return Err(FieldError::new("/sort", "invalid_type", "must be a string")),
    };
    let (descending, name) = raw
        .strip_prefix('-')
        .map_or((false, raw), |name| (true, name));
    let by = match name {
        "relevance" if has_q => SortBy::Relevance,
        "relevance" => return Err(invalid("relevance needs a q to be relevant to".into())),
        "created_at" | "updated_at" | "last_contacted_at" => SortBy::Time(name.to_owned()),
        "first_name" | "last_name" | "display_name" | "company" => SortBy::Text(name.to_owned()),
        _ => match name.strip_prefix("custom.") {
            Some(key) => {
                let field = fields
                    .iter()
                    .find(|f| f.key == key)
                    .ok_or_else(|| invalid(format!("there is no custom field {key}")))?;
                let kind = SortKind::of(field.kind).ok_or_else(|| {
                    invalid(format!(
                        "a {} field cannot be sorted by",
                        field.kind.as_str()
                    ))
                })?;
                SortBy::Custom(key.to_owned(), kind)
            }
            None => {
                return Err(invalid(format!(
                "must be relevance (with q), {}, or custom.<key>, with a leading - for descending",
                SORT_FIELDS.join(", ")
            )))
            }
        },
    };
    // Relevance reads best first.
    let descending = if by == SortBy::Relevance {
        !descending
    } else {
        descending
    };
    Ok(SearchSort { by, descending })
}

/// Reads a filter tree, counting its conditions against [`MAX_CONDITIONS`].
struct TreeReader<'a, 'e> {
    context: &'a SearchContext<'a>,
    conditions: usize,
    errors: &'e mut ValidationErrors,
}

impl TreeReader<'_, '_> {
    fn node(&mut self, raw: &Value, at: &str, depth: usize) -> Option<Node> {
        let Some(object) = raw.as_object() else {
            self.errors.push(FieldError::new(
                at,
                "invalid_type",
                "must be an object: {\"and\": [...]}, {\"or\": [...]}, {\"not\": {...}} or a condition",
            ));
            return None;
        };
        if depth > MAX_DEPTH {
            self.errors.push(FieldError::new(
                at,
                "too_deep",
                format!("a filter nests at most {MAX_DEPTH} levels"),
            ));
            return None;
        }
        let group = ["and", "or", "not"]
            .into_iter()
            .find(|name| object.contains_key(*name));
        match group {
            Some(name) if object.len() == 1 => {
                let inner = &object[name];
                let at = format!("{at}/{name}");
                if name == "not" {
                    return self
                        .node(inner, &at, depth + 1)
                        .map(|node| Node::Not(Box::new(node)));
                }
                let Some(items) = inner.as_array().filter(|items| !items.is_empty()) else {
                    self.errors.push(FieldError::new(
                        at,
                        "invalid_type",
                        "must be a non-empty array of filters",
                    ));
                    return None;
                };
                let nodes: Vec<Option<Node>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.node(item, &format!("{at}/{i}"), depth + 1))
                    .collect();
                let nodes: Option<Vec<Node>> = nodes.into_iter().collect();
                nodes.map(|nodes| {
                    if name == "and" {
                        Node::All(nodes)
                    } else {
                        Node::Any(nodes)
                    }
                })
            }
            Some(_) => {
                self.errors.push(FieldError::new(
                    at,
                    "invalid_filter",
                    "a group holds its one member (and, or, not) and nothing else",
                ));
                None
            }
            None => {
                self.conditions += 1;
                if self.conditions == MAX_CONDITIONS + 1 {
                    self.errors.push(FieldError::new(
                        at,
                        "too_many_conditions",
                        format!("a filter holds at most {MAX_CONDITIONS} conditions"),
                    ));
                }
                if self.conditions > MAX_CONDITIONS {
                    return None;
                }
                match condition(object, at, self.context) {
                    Ok(node) => Some(node),
                    Err(error) => {
                        self.errors.push(error);
                        None
                    }
                }
            }
        }
    }
}

/// Which operators a target admits.
fn admits(target: &Target, op: Operator) -> bool {
    use Operator::*;
    let presence = matches!(op, IsEmpty | Exists);
    let equality = matches!(op, Eq | Neq | In | NotIn);
    let range = matches!(op, Lt | Lte | Gt | Gte | Between);
    let text = matches!(op, Contains | StartsWith);
    match target {
        Target::Text { .. } => true,
        Target::Time(_) => range || presence,
        Target::Email => equality || text || presence,
        Target::Phone => equality || op == StartsWith || presence,
        Target::Tags | Target::DoNotContact => equality || op == Contains || presence,
        Target::Lists => equality || op == Contains,
        Target::PreferredChannel | Target::Language | Target::Consent(_) => equality || presence,
        Target::Custom { kind, .. } => match kind {
            CustomKind::Text => true,
            CustomKind::Number => equality || range || presence,
            CustomKind::Boolean => matches!(op, Eq | Neq) || presence,
            CustomKind::MultiSelect => equality || op == Contains || presence,
        },
    }
}

/// The target a field name names.
fn target(name: &str, context: &SearchContext) -> Result<(Target, Option<&'static str>), String> {
    let text = |column: &'static str, fold: bool| Target::Text { column, fold };
    Ok(match name {
        "first_name" | "last_name" | "display_name" | "company" | "job_title" => {
            let column = [
                "first_name",
                "last_name",
                "display_name",
                "company",
                "job_title",
            ]
            .into_iter()
            .find(|c| *c == name)
            .unwrap_or_default();
            (text(column, true), None)
        }
        "owner_id" => (text("owner_id", false), None),
        "source" => (text("source", false), None),
        "lifecycle_stage" => (text("lifecycle_stage", false), Some("lifecycle_stage")),
        "created_at" => (Target::Time("created_at"), None),
        "updated_at" => (Target::Time("updated_at"), None),
        "last_contacted_at" => (Target::Time("last_contacted_at"), None),
        "email" => (Target::Email, None),
        "phone" => (Target::Phone, None),
        "tags" => (Target::Tags, None),
        "lists" => (Target::Lists, None),
        "preferred_channel" => (Target::PreferredChannel, None),
        "language" => (Target::Language, None),
        "do_not_contact" => (Target::DoNotContact, None),
        _ => {
            if let Some(purpose) = name.strip_prefix("consent.") {
                let purpose = crate::consent::parse_purpose(purpose, "")
                    .map_err(|e| format!("consent.<purpose>: the purpose {}", e.message))?;
                (Target::Consent(purpose), None)
            } else if let Some(key) = name.strip_prefix("custom.") {
                let field = context
                    .fields
                    .iter()
                    .find(|f| f.key == key)
                    .ok_or_else(|| format!("there is no custom field {key}"))?;
                (
                    Target::Custom {
                        key: field.key.clone(),
                        kind: CustomKind::of(field.kind),
                    },
                    None,
                )
            } else {
                return Err(format!(
                    "unknown field {name}; fields are {}, consent.<purpose> and custom.<key>",
                    FIELDS.join(", ")
                ));
            }
        }
    })
}

/// The standard fields a condition may name (and `consent.<purpose>`, `custom.<key>`).
pub const FIELDS: &[&str] = &[
    "first_name",
    "last_name",
    "display_name",
    "company",
    "job_title",
    "owner_id",
    "source",
    "lifecycle_stage",
    "created_at",
    "updated_at",
    "last_contacted_at",
    "email",
    "phone",
    "tags",
    "lists",
    "preferred_channel",
    "language",
    "do_not_contact",
];

fn condition(
    object: &Map<String, Value>,
    at: &str,
    context: &SearchContext,
) -> Result<Node, FieldError> {
    if let Some(extra) = object
        .keys()
        .find(|k| !matches!(k.as_str(), "field" | "op" | "value"))
    {
        return Err(FieldError::new(
            format!("{at}/{extra}"),
            "unknown_member",
            "a condition holds field, op and value",
        ));
    }
    let field_at = format!("{at}/field");
    let name = object
        .get("field")
        .and_then(Value::as_str)
        .ok_or_else(|| FieldError::new(&field_at, "required", "a condition names its field"))?;
    let (target, enumeration) =
        target(name, context).map_err(|m| FieldError::new(&field_at, "unknown_field", m))?;
    let op_at = format!("{at}/op");
    let op = object
        .get("op")
        .and_then(Value::as_str)
        .and_then(Operator::parse)
        .ok_or_else(|| {
            FieldError::new(
                &op_at,
                "invalid_operator",
                format!(
                    "must be one of {}",
                    OPERATORS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
    if !admits(&target, op)
        || (enumeration.is_some()
            && matches!(
                op,
                Operator::Lt
                    | Operator::Lte
                    | Operator::Gt
                    | Operator::Gte
                    | Operator::Between
                    | Operator::Contains
                    | Operator::StartsWith
            ))
    {
        return Err(FieldError::new(
            op_at,
            "invalid_operator",
            format!("{name} cannot be compared with {}", op.name()),
        ));
    }
    let value_at = format!("{at}/value");
    let raw = object.get("value").unwrap_or(&Value::Null);
    let reader = ValueReader {
        target: &target,
        field: name,
        context,
    };
    let positive = |test: Test| {
        Node::Condition(Condition {
            target: target.clone(),
            test,
        })
    };
    let negative = |test: Test| Node::Not(Box::new(positive(test)));
    use Operator::*;
    Ok(match op {
        Eq | Neq | Contains
            if matches!(target, Target::Tags | Target::Lists | Target::DoNotContact)
                || matches!(
                    target,
                    Target::Custom {
                        kind: CustomKind::MultiSelect,
                        ..
                    }
                ) =>
        {
            let test = Test::OneOf(vec![reader.equal(raw, &value_at)?]);
            if op == Neq {
                negative(test)
            } else {
                positive(test)
            }
        }
        Eq | Neq => {
            let test = Test::OneOf(vec![reader.equal(raw, &value_at)?]);
            if op == Eq {
                positive(test)
            } else {
                negative(test)
            }
        }
        In | NotIn => {
            let items = raw
                .as_array()
                .filter(|items| (1..=MAX_VALUES).contains(&items.len()))
                .ok_or_else(|| {
                    FieldError::new(
                        &value_at,
                        "invalid_type",
                        format!("must be an array of 1 to {MAX_VALUES} values"),
                    )
                })?;
            let values = items
                .iter()
                .enumerate()
                .map(|(i, item)| reader.equal(item, &format!("{value_at}/{i}")))
                .collect::<Result<Vec<_>, _>>()?;
            if op == In {
                positive(Test::OneOf(values))
            } else {
                negative(Test::OneOf(values))
            }
        }
        Lt | Lte | Gt | Gte => {
            let bound = Bound {
                value: reader.ordered(raw, &value_at)?,
                inclusive: matches!(op, Lte | Gte),
            };
            let (lower, upper) = if matches!(op, Lt | Lte) {
                (None, Some(bound))
            } else {
                (Some(bound), None)
            };
            positive(Test::Range { lower, upper })
        }
        Between => {
            let pair = raw
                .as_array()
                .filter(|pair| pair.len() == 2)
                .ok_or_else(|| {
                    FieldError::new(
                        &value_at,
                        "invalid_type",
                        "must be an array of two values, [from, to]",
                    )
                })?;
            let lower = reader.ordered(&pair[0], &format!("{value_at}/0"))?;
            let upper = reader.ordered(&pair[1], &format!("{value_at}/1"))?;
            positive(Test::Range {
                lower: Some(Bound {
                    value: lower,
                    inclusive: true,
                }),
                upper: Some(Bound {
                    value: upper,
                    inclusive: true,
                }),
            })
        }
        Contains | StartsWith => {
            let text = reader.text(raw, &value_at)?.to_lowercase();
            let e164_prefix = |t: &str| {
                t.strip_prefix('+')
                    .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
            };
            if target == Target::Phone && !e164_prefix(&text) {
                return Err(FieldError::new(
                    value_at,
                    "invalid_value",
                    "a phone prefix is + and digits, in E.164 (+4420)",
                ));
            }
            positive(if op == Contains {
                Test::Contains(text)
            } else {
                Test::StartsWith(text)
            })
        }
        IsEmpty | Exists => {
            let flag = match raw {
                Value::Null => true,
                Value::Bool(flag) => *flag,
                _ => {
                    return Err(FieldError::new(
                        value_at,
                        "invalid_type",
                        "must be true or false, or absent (true)",
                    ))
                }
            };
            if flag == (op == Exists) {
                positive(Test::Present)
            } else {
                negative(Test::Present)
            }
        }
    })
}

/// Reads a condition's values as its target stores them.
struct ValueReader<'a> {
    target: &'a Target,
    field: &'a str,
    context: &'a SearchContext<'a>,
}

impl ValueReader<'_> {
    fn text<'v>(&self, raw: &'v Value, at: &str) -> Result<&'v str, FieldError> {
        raw.as_str()
            .filter(|t| !t.trim().is_empty() && t.chars().count() <= MAX_TEXT_CHARS)
            .map(str::trim)
            .ok_or_else(|| {
                FieldError::new(
                    at,
                    "invalid_value",
                    format!("must be a string of 1 to {MAX_TEXT_CHARS} characters"),
                )
            })
    }

    /// A value `eq` / `in` compare with: normalized the way it is stored.
    fn equal(&self, raw: &Value, at: &str) -> Result<Value, FieldError> {
        let field = self.field;
        let reword = |e: FieldError| FieldError::new(at, e.code, e.message);
        Ok(match self.target {
            Target::Text {
                column: "lifecycle_stage",
                ..
            } => Value::String(
                LifecycleStage::parse(self.text(raw, at)?, at)?
                    .as_str()
                    .to_owned(),
            ),
            Target::Text { fold, .. } => {
                let text = self.text(raw, at)?;
                Value::String(if *fold {
                    text.to_lowercase()
                } else {
                    text.to_owned()
                })
            }
            Target::Time(_) => Value::String(crate::time::rfc3339(crate::time::parse(
                self.text(raw, at)?,
                at,
            )?)),
            Target::Email => Value::String(EmailAddress::parse(self.text(raw, at)?, at)?.key()),
            Target::Phone => Value::String(
                PhoneNumber::parse(self.text(raw, at)?, self.context.region, at)?
                    .e164()
                    .to_owned(),
            ),
            Target::Tags => Value::String(
                TagId::parse(self.text(raw, at)?)
                    .ok_or_else(|| FieldError::new(at, "invalid_id", "must be a tag id"))?
                    .to_string(),
            ),
            Target::Lists => Value::String(
                ListId::parse(self.text(raw, at)?)
                    .ok_or_else(|| FieldError::new(at, "invalid_id", "must be a list id"))?
                    .to_string(),
            ),
            Target::PreferredChannel | Target::DoNotContact => Value::String(
                crate::preferences::parse_channel(self.text(raw, at)?, at)?.to_owned(),
            ),
            Target::Language => {
                Value::String(crate::preferences::parse_language(self.text(raw, at)?, at)?)
            }
            Target::Consent(_) => match self.text(raw, at)? {
                status @ ("granted" | "withdrawn") => Value::String(status.to_owned()),
                _ => {
                    return Err(FieldError::new(
                        at,
                        "invalid_value",
                        "must be granted or withdrawn",
                    ))
                }
            },
            Target::Custom { key, kind } => {
                let definition = self
                    .context
                    .fields
                    .iter()
                    .find(|f| f.key == *key)
                    .ok_or_else(|| {
                        FieldError::new(
                            at,
                            "unknown_field",
                            format!("there is no custom field {field}"),
                        )
                    })?;
                match (kind, definition.kind) {
                    (CustomKind::Number, _) => self.ordered(raw, at)?,
                    (CustomKind::Text, FieldType::Text | FieldType::LongText) => {
                        Value::String(self.text(raw, at)?.to_owned())
                    }
                    (CustomKind::MultiSelect, _) => {
                        let id = self.text(raw, at)?;
                        definition
                            .options
                            .iter()
                            .find(|o| o.id == id)
                            .map(|o| Value::String(o.id.clone()))
                            .ok_or_else(|| {
                                FieldError::new(
                                    at,
                                    "invalid_value",
                                    "must be the id of one of the field's options",
                                )
                            })?
                    }
                    _ => definition
                        .value(raw, self.context.region, at)
                        .map_err(reword)?,
                }
            }
        })
    }

    /// A bound of `lt`, `gt`, `between`…: a time, a number, or text.
    fn ordered(&self, raw: &Value, at: &str) -> Result<Value, FieldError> {
        match self.target {
            Target::Time(_) => self.equal(raw, at),
            Target::Custom {
                kind: CustomKind::Number,
                ..
            } => raw
                .as_f64()
                .filter(|n| n.is_finite())
                .map(|_| raw.clone())
                .ok_or_else(|| FieldError::new(at, "invalid_type", "must be a number")),
            Target::Custom { key, .. } => {
                let kind = self
                    .context
                    .fields
                    .iter()
                    .find(|f| f.key == *key)
                    .map(|f| f.kind);
                match kind {
                    Some(FieldType::Date | FieldType::DateTime) => self.equal(raw, at),
                    _ => self.text(raw, at).map(|t| Value::String(t.to_owned())),
                }
            }
            Target::Text { fold, .. } => {
                let text = self.text(raw, at)?;
                Ok(Value::String(if *fold {
                    text.to_lowercase()
                } else {
                    text.to_owned()
                }))
            }
            _ => Err(FieldError::new(at, "invalid_operator", "has no order")),
        }
    }
}

/// The ids of the lists a tree names (their definitions are read before it is compiled).
pub fn lists_named(node: &Node, into: &mut Vec<ListId>) {
    match node {
        Node::All(nodes) | Node::Any(nodes) => nodes.iter().for_each(|n| lists_named(n, into)),
        Node::Not(node) => lists_named(node, into),
        Node::Condition(Condition {
            target: Target::Lists,
            test: Test::OneOf(ids),
        }) => {
            for id in ids
                .iter()
                .filter_map(Value::as_str)
                .filter_map(ListId::parse)
            {
                if !into.contains(&id) {
                    into.push(id);
                }
            }
        }
        Node::Condition(_) => {}
    }
}
