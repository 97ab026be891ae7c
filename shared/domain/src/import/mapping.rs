//! Which column of a CSV file becomes which field of a contact, and a record read through it: the
//! contact's create body (what the batch's create or upsert reads) and its tags. A column the
//! mapping names nothing for is ignored; the standard names of an export map by themselves, so an
//! exported file imports back as it is.

use super::reader::RowProblem;
use crate::contact::export::{split_items, STANDARD_COLUMNS};
use crate::custom_field::{CustomField, FieldType};
use crate::error::{FieldError, ValidationErrors};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Where a column's cells go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A text field of the contact's body (`first_name`, `company`, ...).
    Text(&'static str),
    /// A part of the address (`street`, `city`, ...).
    Address(&'static str),
    /// Every email address (`; `-separated, the first primary), or their labels in the same order.
    Emails,
    EmailLabels,
    /// Likewise for phone numbers.
    Phones,
    PhoneLabels,
    /// A custom field, by key, read by its type.
    Custom(String, FieldType),
    /// Tag names (`; `-separated), attached after the contact is written; unknown names are created.
    Tags,
}

/// The text fields of a contact a column may fill.
const TEXT_FIELDS: &[&str] = &[
    "first_name",
    "last_name",
    "display_name",
    "company",
    "job_title",
    "lifecycle_stage",
    "owner_id",
    "source",
];
const ADDRESS_PARTS: &[&str] = &["street", "city", "region", "postal_code", "country"];

/// Names a file may use for a standard target without an explicit mapping, beside the target's
/// own name (compared without case, spaces, `-` or `_`).
const ALIASES: &[(&str, &str)] = &[
    ("email", "emails"),
    ("emailaddress", "emails"),
    ("phone", "phones"),
    ("phonenumber", "phones"),
    ("mobile", "phones"),
    ("firstname", "first_name"),
    ("givenname", "first_name"),
    ("lastname", "last_name"),
    ("surname", "last_name"),
    ("familyname", "last_name"),
    ("name", "display_name"),
    ("fullname", "display_name"),
    ("organisation", "company"),
    ("organization", "company"),
    ("title", "job_title"),
    ("tag", "tags"),
];

/// Each column of the header with its target, or `None` when it is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub columns: Vec<(String, Option<Target>)>,
}

fn folded(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The target a name denotes: a standard field, `address.<part>`, `custom.<key>` of a field the
/// tenant has, or `tags`. `None` for a name that is none of these.
fn target_named(name: &str, fields: &[CustomField]) -> Option<Target> {
    if let Some(key) = name.strip_prefix("custom.") {
        return fields
            .iter()
            .find(|field| field.key == key && !field.archived)
            .map(|field| Target::Custom(field.key.clone(), field.kind));
    }
    if let Some(part) = name.strip_prefix("address.") {
        return ADDRESS_PARTS
            .iter()
            .find(|p| **p == part)
            .map(|p| Target::Address(p));
    }
    match name {
        "emails" => Some(Target::Emails),
        "email_labels" => Some(Target::EmailLabels),
        "phones" => Some(Target::Phones),
        "phone_labels" => Some(Target::PhoneLabels),
        "tags" => Some(Target::Tags),
        _ => TEXT_FIELDS
            .iter()
            .find(|field| **field == name)
            .map(|field| Target::Text(field)),
    }
}

/// The target a column maps to by its name alone: its exact name, or an alias, compared loosely.
fn default_target(column: &str, fields: &[CustomField]) -> Option<Target> {
    if let Some(target) = target_named(column, fields) {
        return Some(target);
    }
    let loose = folded(column);
    let standard = STANDARD_COLUMNS
        .iter()
        .copied()
        .chain(ALIASES.iter().map(|(alias, _)| *alias))
        .find(|name| folded(name) == loose)?;
    let name = ALIASES
        .iter()
        .find(|(alias, _)| *alias == standard)
        .map_or(standard, |(_, target)| *target);
    target_named(name, fields)
}

impl Mapping {
    /// The mapping of `header`: each column by `explicit` (column name → target name, or `null` to
    /// ignore it) when it is named there, else by its own name. Errors point into `/mapping`.
    pub fn resolve(
        header: &[String],
        explicit: &Map<String, Value>,
        fields: &[CustomField],
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        for column in explicit.keys() {
            if !header.iter().any(|name| name == column) {
                errors.push(FieldError::new(
                    format!("/mapping/{}", pointer_escape(column)),
                    "unknown_column",
                    "the file's header has no such column",
                ));
            }
        }
        let mut columns = Vec::with_capacity(header.len());
        for column in header {
            let target = match explicit.get(column) {
                None => default_target(column, fields),
                Some(Value::Null) => None,
                Some(Value::String(name)) => match target_named(name, fields) {
                    Some(target) => Some(target),
                    None => {
                        errors.push(FieldError::new(
                            format!("/mapping/{}", pointer_escape(column)),
                            "unknown_target",
                            format!("`{name}` is no field a column can fill"),
                        ));
                        None
                    }
                },
                Some(_) => {
                    errors.push(FieldError::new(
                        format!("/mapping/{}", pointer_escape(column)),
                        "invalid_type",
                        "a target is a field name, or null to ignore the column",
                    ));
                    None
                }
            };
            columns.push((column.clone(), target));
        }
        let mut targets: HashMap<String, &str> = HashMap::new();
        for (column, target) in &columns {
            if let Some(target) = target {
                let key = format!("{target:?}");
                if let Some(first) = targets.insert(key, column) {
                    errors.push(FieldError::new(
                        format!("/mapping/{}", pointer_escape(column)),
                        "duplicate_target",
                        format!("the column `{first}` fills the same field"),
                    ));
                }
            }
        }
        if !columns.iter().any(|(_, target)| target.is_some()) {
            errors.push(FieldError::new(
                "/mapping",
                "nothing_mapped",
                "no column of the file maps to a field of a contact",
            ));
        }
        errors.into_result(|| Mapping { columns })
    }

    /// The column a contact body's JSON pointer (as a create's validation names it) came from.
    pub fn column_of(&self, pointer: &str) -> Option<&str> {
        let mut parts = pointer.trim_start_matches('/').split('/');
        let first = parts.next()?;
        let second = parts.next();
        let third = parts.next();
        self.columns
            .iter()
            .find(|(_, target)| match (target, first) {
                (Some(Target::Text(name)), _) => *name == first,
                (Some(Target::Address(part)), "address") => second == Some(part),
                (Some(Target::Emails), "emails") => third != Some("label"),
                (Some(Target::EmailLabels), "emails") => third == Some("label"),
                (Some(Target::Phones), "phones") => third != Some("label"),
                (Some(Target::PhoneLabels), "phones") => third == Some("label"),
                (Some(Target::Custom(key, _)), "custom") => second == Some(key),
                (Some(Target::Tags), "tags") => true,
                _ => false,
            })
            .map(|(column, _)| column.as_str())
    }

    /// The contact body and tag names of one record, or every problem of its cells.
    pub fn contact(&self, cells: &[String]) -> Result<(Value, Vec<String>), Vec<RowProblem>> {
        let mut body = Map::new();
        let mut address = Map::new();
        let mut custom = Map::new();
        let mut tags = Vec::new();
        let (mut emails, mut email_labels, mut phones, mut phone_labels) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut problems = Vec::new();
        for ((column, target), cell) in self.columns.iter().zip(cells) {
            let cell = cell.trim();
            let Some(target) = target else { continue };
            match target {
                Target::Text(name) if !cell.is_empty() => {
                    body.insert((*name).to_owned(), json!(cell));
                }
                Target::Address(part) if !cell.is_empty() => {
                    address.insert((*part).to_owned(), json!(cell));
                }
                Target::Emails => emails = split(cell),
                Target::EmailLabels => email_labels = split_items(cell),
                Target::Phones => phones = split(cell),
                Target::PhoneLabels => phone_labels = split_items(cell),
                Target::Tags => tags = split(cell),
                Target::Custom(key, kind) if !cell.is_empty() => match custom_value(cell, *kind) {
                    Ok(value) => {
                        custom.insert(key.clone(), value);
                    }
                    Err(message) => {
                        problems.push(RowProblem::of_column(column, "invalid", message))
                    }
                },
                _ => {}
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let entries = |values: Vec<String>, labels: Vec<String>, member: &str| -> Vec<Value> {
            values
                .into_iter()
                .enumerate()
                .map(|(at, value)| {
                    let label = labels.get(at).filter(|label| !label.is_empty());
                    json!({member: value, "label": label, "primary": at == 0})
                })
                .collect()
        };
        if !emails.is_empty() {
            body.insert(
                "emails".into(),
                json!(entries(emails, email_labels, "address")),
            );
        }
        if !phones.is_empty() {
            body.insert(
                "phones".into(),
                json!(entries(phones, phone_labels, "number")),
            );
        }
        if !address.is_empty() {
            body.insert("address".into(), Value::Object(address));
        }
        if !custom.is_empty() {
            body.insert("custom".into(), Value::Object(custom));
        }
        drop_derived_display_name(&mut body, None);
        Ok((Value::Object(body), tags))
    }
}

/// The members of an NDJSON line a contact is written from (the rest, such as `id` or
/// `created_at`, are the server's and are ignored).
const NDJSON_FIELDS: &[&str] = &[
    "first_name",
    "last_name",
    "display_name",
    "company",
    "job_title",
    "address",
    "lifecycle_stage",
    "owner_id",
    "source",
    "custom",
];

/// The contact body and tag names of an NDJSON line (an exported line reads back as it was).
pub fn ndjson_contact(text: &str) -> Result<(Value, Vec<String>), Vec<RowProblem>> {
    let invalid =
        |column: &str, message: &str| vec![RowProblem::of_column(column, "invalid", message)];
    let Ok(Value::Object(line)) = serde_json::from_str::<Value>(text) else {
        return Err(vec![RowProblem::of_row(
            "invalid_json",
            "the line is not a JSON object",
        )]);
    };
    let mut body: Map<String, Value> = line
        .iter()
        .filter(|(key, value)| NDJSON_FIELDS.contains(&key.as_str()) && !value.is_null())
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let entries = |member: &str, value_key: &str| -> Result<Option<Value>, Vec<RowProblem>> {
        match line.get(member) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => Ok(Some(Value::Array(
                items
                    .iter()
                    .map(|item| {
                        json!({
                            value_key: item.get(value_key).cloned().unwrap_or(Value::Null),
                            "label": item.get("label").cloned().unwrap_or(Value::Null),
                            "primary": item.get("primary").cloned().unwrap_or(Value::Bool(false)),
                        })
                    })
                    .collect(),
            ))),
            Some(_) => Err(invalid(member, "must be an array")),
        }
    };
    if let Some(emails) = entries("emails", "address")? {
        body.insert("emails".into(), emails);
    }
    if let Some(phones) = entries("phones", "number")? {
        body.insert("phones".into(), phones);
    }
    let tags = match line.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(names)) => names
            .iter()
            .map(|name| name.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid("tags", "tags are names"))?,
        Some(_) => return Err(invalid("tags", "tags are an array of names")),
    };
    let primary_phone = line
        .get("phones")
        .and_then(Value::as_array)
        .and_then(|phones| phones.iter().find(|p| p["primary"] == true))
        .and_then(|phone| phone["e164"].as_str());
    drop_derived_display_name(&mut body, primary_phone);
    Ok((Value::Object(body), tags))
}

/// Leaves the display name out when it is the one the contact would derive (from its names, else
/// its primary email, else its primary phone), so that it goes on following them.
fn drop_derived_display_name(body: &mut Map<String, Value>, primary_e164: Option<&str>) {
    let Some(display) = body.get("display_name").and_then(Value::as_str) else {
        return;
    };
    let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::trim);
    let names: Vec<&str> = [text("first_name"), text("last_name")]
        .into_iter()
        .flatten()
        .filter(|name| !name.is_empty())
        .collect();
    let derived = if !names.is_empty() {
        Some(names.join(" "))
    } else {
        body.get("emails")
            .and_then(Value::as_array)
            .and_then(|emails| emails.iter().find(|e| e["primary"] == true))
            .and_then(|email| email["address"].as_str())
            .or(primary_e164)
            .map(str::to_owned)
    };
    if derived.as_deref() == Some(display.trim()) {
        body.remove("display_name");
    }
}

/// The items of a multi-valued cell, blanks left out.
fn split(cell: &str) -> Vec<String> {
    let mut items = split_items(cell);
    items.retain(|item| !item.is_empty());
    items
}

/// A custom field's cell as the JSON its field reads: a number for numbers, a boolean for booleans
/// (`true`/`false`, `yes`/`no`, `1`/`0`), a list for a multi-select; text otherwise (the field's
/// own rules check it then).
fn custom_value(cell: &str, kind: FieldType) -> Result<Value, String> {
    match kind {
        FieldType::Number => cell
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("`{cell}` is not a whole number")),
        FieldType::Decimal => cell
            .parse::<f64>()
            .ok()
            .and_then(|number| serde_json::Number::from_f64(number).map(Value::Number))
            .ok_or_else(|| format!("`{cell}` is not a number")),
        FieldType::Boolean => match cell.to_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "0" => Ok(Value::Bool(false)),
            _ => Err(format!("`{cell}` is not true or false")),
        },
        FieldType::MultiSelect => Ok(json!(split(cell))),
        _ => Ok(Value::String(cell.to_owned())),
    }
}

/// A name as one segment of a JSON pointer (RFC 6901).
fn pointer_escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn an_exports_columns_map_by_themselves_and_read_back() {
        let mapping = Mapping::resolve(
            &header(&[
                "id",
                "First Name",
                "emails",
                "email_labels",
                "tags",
                "address.city",
                "created_at",
            ]),
            &Map::new(),
            &[],
        )
        .unwrap();
        let targets: Vec<bool> = mapping.columns.iter().map(|(_, t)| t.is_some()).collect();
        assert_eq!(targets, [false, true, true, true, true, true, false]);
        let cells = header(&[
            "x",
            "Ada",
            "ada@example.com; ada@home.example",
            "work; ",
            "vip; west",
            "London",
            "2026-01-01",
        ]);
        let (body, tags) = mapping.contact(&cells).unwrap();
        assert_eq!(
            body,
            json!({
                "first_name": "Ada",
                "emails": [
                    {"address": "ada@example.com", "label": "work", "primary": true},
                    {"address": "ada@home.example", "label": null, "primary": false}
                ],
                "address": {"city": "London"}
            })
        );
        assert_eq!(tags, ["vip", "west"]);
        assert_eq!(mapping.column_of("/emails/1/address"), Some("emails"));
        assert_eq!(mapping.column_of("/emails/0/label"), Some("email_labels"));
        assert_eq!(mapping.column_of("/address/city"), Some("address.city"));
    }

    #[test]
    fn an_explicit_mapping_is_checked() {
        let columns = header(&["E-mail", "Notes", "Mail"]);
        let explicit =
            json!({"Mail": "emails", "E-mail": null, "Missing": "company", "Notes": "notes"});
        let errors = Mapping::resolve(&columns, explicit.as_object().unwrap(), &[]).unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["/mapping/Missing", "/mapping/Notes"]);
        let twice = Mapping::resolve(&header(&["email", "e-mail"]), &Map::new(), &[]).unwrap_err();
        assert_eq!(twice.0[0].code, "duplicate_target");
    }
}
