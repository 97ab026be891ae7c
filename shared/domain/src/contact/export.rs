//! A contact as an export writes it: one NDJSON line (the contact as `GET` answers it, with its
//! tags, preferences and consent), or one CSV row under a header that names every column, custom
//! fields and consent purposes included. An import reads both back ([`crate::csv`] neutralises
//! formulas on the way out; the import undoes that on the way in).

use super::Contact;
use crate::csv;
use crate::event::Action;
use crate::ids::ExportId;
use crate::import::Format;
use crate::preferences::DoNotContact;
use crate::time::rfc3339;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Separates the items of a multi-valued cell (emails, tags, a multi-select custom field).
pub const SEPARATOR: &str = "; ";

/// The items as one multi-valued cell, joined by [`SEPARATOR`]; a `;` or a backslash inside an item
/// is escaped with a backslash (a tag named `a;b` is written `a\;b`, and stays one tag), as
/// [`split_items`] reads it back.
pub fn join_items<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    let escaped: Vec<String> = items
        .into_iter()
        .map(|item| item.as_ref().replace('\\', "\\\\").replace(';', "\\;"))
        .collect();
    escaped.join(SEPARATOR)
}

/// The items of a multi-valued cell, each trimmed, blanks kept: split at each `;` that is not
/// escaped (`\;` is a `;` of the item, `\\` a backslash; any other backslash is itself, as files
/// written elsewhere hold them).
pub fn split_items(cell: &str) -> Vec<String> {
    if cell.is_empty() {
        return Vec::new();
    }
    let mut items = Vec::new();
    let mut item = String::new();
    let mut chars = cell.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&next @ (';' | '\\')) => {
                    item.push(next);
                    chars.next();
                }
                _ => item.push(c),
            },
            ';' => items.push(std::mem::take(&mut item)),
            _ => item.push(c),
        }
    }
    items.push(item);
    items.iter().map(|item| item.trim().to_owned()).collect()
}

/// What an export writes beside the contact itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extras {
    /// Tag names, in name order.
    pub tags: Vec<String>,
    pub preferred_channel: Option<String>,
    pub language: Option<String>,
    pub time_zone: Option<String>,
    pub do_not_contact: DoNotContact,
    /// Each consent purpose's state now (`granted` or `withdrawn`), by purpose.
    pub consent: BTreeMap<String, String>,
}

/// The columns of a CSV export beside the standard ones: the tenant's custom field keys and the
/// consent purposes it records, each sorted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Columns {
    pub custom: Vec<String>,
    pub purposes: Vec<String>,
}

/// The standard columns of a CSV export, in order; an import maps the same names by default.
pub const STANDARD_COLUMNS: &[&str] = &[
    "id",
    "first_name",
    "last_name",
    "display_name",
    "emails",
    "email_labels",
    "phones",
    "phone_labels",
    "company",
    "job_title",
    "address.street",
    "address.city",
    "address.region",
    "address.postal_code",
    "address.country",
    "lifecycle_stage",
    "owner_id",
    "source",
    "tags",
    "preferred_channel",
    "language",
    "time_zone",
    "do_not_contact",
    "last_contacted_at",
    "created_at",
    "updated_at",
    "version",
];

impl Columns {
    /// The CSV header line.
    pub fn header(&self) -> String {
        let custom = self.custom.iter().map(|key| format!("custom.{key}"));
        let consent = self.purposes.iter().map(|p| format!("consent.{p}"));
        let names: Vec<String> = STANDARD_COLUMNS
            .iter()
            .map(|name| (*name).to_owned())
            .chain(custom)
            .chain(consent)
            .collect();
        csv::line(&names.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// `contact` as one CSV line under [`Columns::header`].
    pub fn row(&self, contact: &Contact, extras: &Extras) -> String {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let address = contact.address.clone().unwrap_or_default();
        let mut cells = vec![
            contact.id.to_string(),
            text(&contact.first_name),
            text(&contact.last_name),
            contact.display_name.clone(),
            join_items(contact.emails.iter().map(|e| &e.address)),
            join_items(contact.emails.iter().map(|e| text(&e.label))),
            join_items(contact.phones.iter().map(|p| &p.number)),
            join_items(contact.phones.iter().map(|p| text(&p.label))),
            text(&contact.company),
            text(&contact.job_title),
            text(&address.street),
            text(&address.city),
            text(&address.region),
            text(&address.postal_code),
            text(&address.country),
            contact
                .lifecycle_stage
                .map(|stage| stage.as_str().to_owned())
                .unwrap_or_default(),
            text(&contact.owner_id),
            text(&contact.source),
            join_items(&extras.tags),
            text(&extras.preferred_channel),
            text(&extras.language),
            text(&extras.time_zone),
            join_items(extras.do_not_contact.channels()),
            contact.last_contacted_at.map(rfc3339).unwrap_or_default(),
            rfc3339(contact.created_at),
            rfc3339(contact.updated_at),
            contact.version.to_string(),
        ];
        cells.extend(
            self.custom
                .iter()
                .map(|key| contact.custom.get(key).map(cell).unwrap_or_default()),
        );
        cells.extend(
            self.purposes
                .iter()
                .map(|purpose| extras.consent.get(purpose).cloned().unwrap_or_default()),
        );
        csv::line(&cells.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

/// A custom field's value as a CSV cell: text as it is, a list as [`join_items`] joins it.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Array(items) => join_items(items.iter().map(cell)),
        other => other.to_string(),
    }
}

/// `contact` as one NDJSON line: the contact as `GET` answers it, with `tags`, `preferences` and
/// `consent` beside its fields.
pub fn ndjson_line(contact: &Contact, extras: &Extras) -> String {
    let mut line = match serde_json::to_value(contact) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    };
    line.insert("tags".into(), json!(extras.tags));
    line.insert(
        "preferences".into(),
        json!({
            "preferred_channel": extras.preferred_channel,
            "language": extras.language,
            "time_zone": extras.time_zone,
            "do_not_contact": extras.do_not_contact,
        }),
    );
    line.insert("consent".into(), json!(extras.consent));
    let mut text = Value::Object(line).to_string();
    text.push('\n');
    text
}

/// What an export job reads: the contacts list's filters (query parameter → value), or a search
/// body (as `POST /api/v1/contacts/search` takes, without its paging fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportSource {
    Filters(BTreeMap<String, String>),
    Search(Value),
}

/// The body of `POST /api/v1/exports`, as raw values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportDraft {
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub filters: Option<Map<String, Value>>,
    #[serde(default)]
    pub search: Option<Value>,
}

/// An export job as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportJob {
    pub id: ExportId,
    /// `queued`, `running`, `completed` or `failed`.
    pub status: String,
    pub format: Format,
    pub source: ExportSource,
    /// Contacts written so far.
    pub rows: i64,
    pub bytes: i64,
    /// Where the file downloads from, once completed and until it expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    pub version: i64,
}

/// What can happen to an export job (who exported what is audited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportAction {
    Created,
    Completed,
}

impl Action for ExportAction {
    const ENTITY: &'static str = "export";

    fn audit_action(self) -> &'static str {
        match self {
            Self::Created => "create",
            Self::Completed => "complete",
        }
    }

    fn event_type(self) -> &'static str {
        match self {
            Self::Created => "export.created",
            Self::Completed => "export.completed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::{ContactEmail, ContactPhone, LifecycleStage};
    use crate::ids::ContactId;
    use chrono::TimeZone;

    #[test]
    fn items_holding_the_separator_or_a_backslash_survive_a_round_trip() {
        let items = ["VIP; gold", r"C:\temp", r"ends with \", "", "plain"];
        let cell = join_items(items);
        assert_eq!(cell, r"VIP\; gold; C:\\temp; ends with \\; ; plain");
        assert_eq!(split_items(&cell), items);
        // Written elsewhere: a lone backslash is itself, blanks and spaces around items as given.
        assert_eq!(split_items(r" a\b ;c; "), [r"a\b", "c", ""]);
        assert!(split_items("").is_empty());
    }

    fn contact() -> Contact {
        let at = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        Contact {
            id: ContactId::from_uuid(uuid::Uuid::nil()),
            first_name: Some("Ada".into()),
            last_name: Some("Lovelace".into()),
            display_name: "Ada Lovelace".into(),
            emails: vec![
                ContactEmail {
                    address: "ada@example.com".into(),
                    label: Some("work".into()),
                    primary: true,
                },
                ContactEmail {
                    address: "ada@home.example".into(),
                    label: None,
                    primary: false,
                },
            ],
            phones: vec![ContactPhone {
                number: "+44 20 7946 0000".into(),
                e164: "+442079460000".into(),
                region: "GB".into(),
                national: "020 7946 0000".into(),
                label: None,
                primary: true,
            }],
            company: Some("=cmd|' /C calc'!A0".into()),
            job_title: None,
            address: None,
            lifecycle_stage: Some(LifecycleStage::Customer),
            owner_id: None,
            source: None,
            custom: serde_json::from_value(
                json!({"plan": "pro", "seats": 12, "langs": ["en", "fr"]}),
            )
            .unwrap(),
            display_name_explicit: false,
            last_contacted_at: None,
            version: 3,
            created_at: at,
            updated_at: at,
            deleted_at: None,
            merged_into: None,
        }
    }

    fn extras() -> Extras {
        Extras {
            tags: vec!["vip".into(), "west".into()],
            do_not_contact: DoNotContact {
                sms: true,
                ..DoNotContact::default()
            },
            consent: [("marketing".to_owned(), "granted".to_owned())].into(),
            ..Extras::default()
        }
    }

    #[test]
    fn a_csv_row_has_a_cell_for_every_column_of_the_header() {
        let columns = Columns {
            custom: vec![
                "langs".into(),
                "plan".into(),
                "seats".into(),
                "unset".into(),
            ],
            purposes: vec!["marketing".into(), "research".into()],
        };
        let header = columns.header();
        assert!(header.starts_with("id,first_name,last_name,display_name,emails,"));
        assert!(header.ends_with(",custom.langs,custom.plan,custom.seats,custom.unset,consent.marketing,consent.research\r\n"));
        let row = columns.row(&contact(), &extras());
        assert!(
            row.contains(",ada@example.com; ada@home.example,work; ,"),
            "{row}"
        );
        // A phone's leading + and the company's formula are neutralised for spreadsheets.
        assert!(row.contains(",'+44 20 7946 0000,"), "{row}");
        assert!(row.contains(",'=cmd|' /C calc'!A0,"), "{row}");
        assert!(row.contains(",customer,"), "{row}");
        assert!(row.contains(",vip; west,"), "{row}");
        assert!(row.ends_with(",en; fr,pro,12,,granted,\r\n"), "{row}");
        let cells = |line: &str| {
            let mut reader = ::csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(line.as_bytes());
            reader.records().next().unwrap().unwrap().len()
        };
        assert_eq!(cells(&header), cells(&row));
    }

    #[test]
    fn an_ndjson_line_is_the_contact_with_its_tags_preferences_and_consent() {
        let line = ndjson_line(&contact(), &extras());
        assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["emails"][1]["address"], "ada@home.example");
        assert_eq!(value["tags"], json!(["vip", "west"]));
        assert_eq!(value["preferences"]["do_not_contact"]["sms"], true);
        assert_eq!(value["consent"]["marketing"], "granted");
        assert_eq!(value["custom"]["seats"], 12);
    }
}
