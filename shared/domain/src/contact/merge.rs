//! Merging contacts: which contacts, by which rules each field of the survivor is chosen, what a
//! merge moves, and what undoing it gives back. Pure rules; the contacts component applies them.

use super::{Contact, MAX_EMAILS, MAX_PHONES};
use crate::error::{FieldError, ValidationErrors};
use crate::ids::ContactId;
use crate::preferences::{DoNotContact, Preferences};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

/// The most contacts merged into one in one merge.
pub const MAX_MERGED: usize = 10;

/// The survivor's fields a rule may name (besides `custom.<key>`), as a create body names them.
pub const FIELDS: &[&str] = &[
    "first_name",
    "last_name",
    "display_name",
    "emails",
    "phones",
    "company",
    "job_title",
    "address",
    "lifecycle_stage",
    "owner_id",
    "source",
];

/// Fields holding a list of entries (emails, phones), which may also be united.
const LIST_FIELDS: &[&str] = &["emails", "phones"];

/// A merge request as its client wrote it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeDraft {
    /// The contacts merged into the one of the path (1 to [`MAX_MERGED`]).
    #[serde(default)]
    pub contact_ids: Vec<String>,
    /// A rule per field (`first_name`, `emails`, `custom.tier`, ...).
    #[serde(default)]
    pub rules: Map<String, Value>,
    /// The rule of every field without one of its own (default `first_non_empty`).
    #[serde(default)]
    pub default_rule: Option<Value>,
    /// Answers what the merge would do and changes nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// How the survivor's value of a field is chosen among the contacts of a merge (the survivor
/// first, then the others in the order the request names them).
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// The survivor's value, even when empty.
    Target,
    /// The value of the most recently updated contact that has one.
    MostRecent,
    /// The first non-empty value, the survivor's first.
    FirstNonEmpty,
    /// Every contact's entries, the survivor's first, without repeats (emails and phones only:
    /// their default).
    Union,
    /// This value, as a create body would give it (`null`: none).
    Value(Value),
}

impl Rule {
    fn parse(raw: &Value, field: &str, list: bool) -> Result<Self, FieldError> {
        let rule = match raw {
            Value::String(name) => match name.as_str() {
                "target" => Rule::Target,
                "most_recent" => Rule::MostRecent,
                "first_non_empty" => Rule::FirstNonEmpty,
                "union" if list => Rule::Union,
                _ => {
                    return Err(FieldError::new(
                        field,
                        "invalid_rule",
                        if list {
                            "must be target, most_recent, first_non_empty, union or {\"value\": ...}"
                        } else {
                            "must be target, most_recent, first_non_empty or {\"value\": ...}"
                        },
                    ))
                }
            },
            Value::Object(members) if members.len() == 1 && members.contains_key("value") => {
                Rule::Value(members["value"].clone())
            }
            _ => {
                return Err(FieldError::new(
                    field,
                    "invalid_rule",
                    "a rule is a name (target, most_recent, first_non_empty) or {\"value\": ...}",
                ))
            }
        };
        Ok(rule)
    }
}

/// A merge request, read: who, by which rules, and whether only to preview it.
#[derive(Debug, Clone)]
pub struct MergeRequest {
    pub others: Vec<ContactId>,
    pub rules: BTreeMap<String, Rule>,
    pub default_rule: Rule,
    pub dry_run: bool,
}

impl MergeRequest {
    /// Reads `draft` for a merge into `target`, reporting every field at fault at once.
    pub fn parse(draft: MergeDraft, target: ContactId) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if draft.contact_ids.is_empty() || draft.contact_ids.len() > MAX_MERGED {
            errors.push(FieldError::new(
                "/contact_ids",
                "out_of_range",
                format!("name 1 to {MAX_MERGED} contacts to merge into this one"),
            ));
        }
        let mut others = Vec::new();
        for (at, raw) in draft.contact_ids.iter().enumerate() {
            let field = format!("/contact_ids/{at}");
            match ContactId::parse(raw.trim()) {
                None => errors.push(FieldError::new(field, "invalid_id", "must be a contact id")),
                Some(id) if id == target => errors.push(FieldError::new(
                    field,
                    "is_target",
                    "a contact cannot be merged into itself",
                )),
                Some(id) if others.contains(&id) => {
                    errors.push(FieldError::new(field, "repeated", "is named twice"))
                }
                Some(id) => others.push(id),
            }
        }
        let mut rules = BTreeMap::new();
        for (name, raw) in &draft.rules {
            let field = format!("/rules/{name}");
            let known = FIELDS.contains(&name.as_str())
                || name
                    .strip_prefix("custom.")
                    .is_some_and(|key| !key.is_empty());
            if !known {
                errors.push(FieldError::new(
                    field,
                    "unknown_field",
                    "names no field of a contact (custom fields are custom.<key>)",
                ));
                continue;
            }
            if let Some(rule) = errors.take(Rule::parse(
                raw,
                &field,
                LIST_FIELDS.contains(&name.as_str()),
            )) {
                rules.insert(name.clone(), rule);
            }
        }
        let default_rule = match &draft.default_rule {
            None => Some(Rule::FirstNonEmpty),
            Some(raw) => match errors.take(Rule::parse(raw, "/default_rule", false)) {
                Some(Rule::Value(_)) => {
                    errors.push(FieldError::new(
                        "/default_rule",
                        "invalid_rule",
                        "the default rule is target, most_recent or first_non_empty",
                    ));
                    None
                }
                rule => rule,
            },
        };
        match default_rule {
            Some(default_rule) if errors.is_empty() => Ok(Self {
                others,
                rules,
                default_rule,
                dry_run: draft.dry_run,
            }),
            _ => Err(errors),
        }
    }

    fn rule(&self, field: &str) -> &Rule {
        static UNION: Rule = Rule::Union;
        match self.rules.get(field) {
            Some(rule) => rule,
            None if LIST_FIELDS.contains(&field) => &UNION,
            None => &self.default_rule,
        }
    }

    /// The survivor's writable view (as a create body carries it) chosen by the rules from
    /// `target` and `others` (in the request's order); the contacts component validates it as a
    /// whole. Too many emails or phones for one contact is an error at the rule's field.
    pub fn merged_view(
        &self,
        target: &Contact,
        others: &[Contact],
    ) -> Result<Value, ValidationErrors> {
        let contacts: Vec<&Contact> = std::iter::once(target).chain(others).collect();
        let views: Vec<Map<String, Value>> = contacts
            .iter()
            .map(|c| match c.writable_view() {
                Value::Object(members) => members,
                _ => Map::new(),
            })
            .collect();
        let mut merged = Map::new();
        let mut errors = ValidationErrors::default();
        for field in FIELDS {
            let rule = self.rule(field);
            let value = match (*field, rule) {
                ("emails", Rule::Union) => united(&contacts, &views, "emails", |c, i| {
                    c.emails[i].address.to_lowercase()
                }),
                ("phones", Rule::Union) => {
                    united(&contacts, &views, "phones", |c, i| c.phones[i].e164.clone())
                }
                _ => chosen(rule, &contacts, &views, |view| view.get(*field)),
            };
            let max = match *field {
                "emails" => MAX_EMAILS,
                "phones" => MAX_PHONES,
                _ => usize::MAX,
            };
            if let Some(entries) = value.as_ref().and_then(Value::as_array) {
                if entries.len() > max {
                    errors.push(FieldError::new(
                        format!("/rules/{field}"),
                        "too_many",
                        format!(
                            "the merged contact would have {} {field}, at most {max}: choose them with {{\"value\": [...]}}",
                            entries.len()
                        ),
                    ));
                }
            }
            if let Some(value) = value.filter(|v| !v.is_null()) {
                merged.insert((*field).to_owned(), value);
            }
        }
        let mut keys: Vec<String> = contacts
            .iter()
            .flat_map(|c| c.custom.keys().cloned())
            .chain(
                self.rules
                    .keys()
                    .filter_map(|name| name.strip_prefix("custom.").map(str::to_owned)),
            )
            .collect();
        keys.sort();
        keys.dedup();
        let mut custom = Map::new();
        for key in keys {
            let rule = self.rule(&format!("custom.{key}"));
            let value = chosen(rule, &contacts, &views, |view| {
                view.get("custom").and_then(|c| c.get(&key))
            });
            if let Some(value) = value.filter(|v| !v.is_null()) {
                custom.insert(key, value);
            }
        }
        if !custom.is_empty() {
            merged.insert("custom".into(), Value::Object(custom));
        }
        errors.into_result(|| Value::Object(merged))
    }
}

/// A value that says nothing: absent, null, an empty string, list or object.
fn is_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(_) => false,
    }
}

/// The value `rule` chooses, reading each contact's view with `read`.
fn chosen<'v>(
    rule: &Rule,
    contacts: &[&Contact],
    views: &'v [Map<String, Value>],
    read: impl Fn(&'v Map<String, Value>) -> Option<&'v Value>,
) -> Option<Value> {
    match rule {
        Rule::Value(value) => Some(value.clone()),
        Rule::Target => read(&views[0]).cloned(),
        Rule::FirstNonEmpty | Rule::Union => views
            .iter()
            .map(&read)
            .find(|v| !is_empty(*v))
            .flatten()
            .cloned(),
        Rule::MostRecent => {
            let mut best: Option<(usize, &Value)> = None;
            for (at, view) in views.iter().enumerate() {
                let Some(value) = read(view).filter(|v| !is_empty(Some(v))) else {
                    continue;
                };
                let newer =
                    best.is_none_or(|(b, _)| contacts[at].updated_at > contacts[b].updated_at);
                if newer {
                    best = Some((at, value));
                }
            }
            best.map(|(_, value)| value.clone())
        }
    }
}

/// Every contact's entries of `field`, the survivor's first, each once by `key`; only the
/// survivor's primary entry stays primary.
fn united(
    contacts: &[&Contact],
    views: &[Map<String, Value>],
    field: &str,
    key: impl Fn(&Contact, usize) -> String,
) -> Option<Value> {
    let mut seen = HashSet::new();
    let mut entries = Vec::new();
    for (at, (contact, view)) in contacts.iter().zip(views).enumerate() {
        let Some(Value::Array(list)) = view.get(field) else {
            continue;
        };
        for (i, entry) in list.iter().enumerate() {
            if !seen.insert(key(contact, i)) {
                continue;
            }
            let mut entry = entry.clone();
            if at > 0 {
                if let Some(members) = entry.as_object_mut() {
                    members.insert("primary".into(), Value::Bool(false));
                }
            }
            entries.push(entry);
        }
    }
    Some(Value::Array(entries))
}

/// The survivor's preferences after a merge: each do-not-contact flag any contact has (a merge
/// never makes a contact reachable where one of them said no), and the survivor's channel,
/// language and time zone, else the first another contact has.
pub fn merged_preferences(target: &Preferences, others: &[Preferences]) -> Preferences {
    let mut merged = target.clone();
    for other in others {
        merged.preferred_channel = merged.preferred_channel.or(other.preferred_channel.clone());
        merged.language = merged.language.or(other.language.clone());
        merged.time_zone = merged.time_zone.or(other.time_zone.clone());
        let (mine, theirs) = (merged.do_not_contact, other.do_not_contact);
        merged.do_not_contact = DoNotContact {
            email: mine.email || theirs.email,
            phone: mine.phone || theirs.phone,
            sms: mine.sms || theirs.sms,
            post: mine.post || theirs.post,
        };
    }
    merged
}

/// Whether two preferences say the same (whatever their versions).
pub fn same_preferences(a: &Preferences, b: &Preferences) -> bool {
    a.writable_view() == b.writable_view()
}

/// A link between two contacts as a merge finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRow {
    pub id: Uuid,
    pub from_contact_id: ContactId,
    pub to_contact_id: ContactId,
    #[serde(rename = "type")]
    pub kind: String,
    /// Stored once for both directions, its contacts in id order (spouse, colleague).
    pub symmetric: bool,
}

/// What a merge does to a link of a merged contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkOutcome {
    /// Now between the survivor and the other contact.
    Moved,
    /// Removed: it would link the survivor to itself, or repeat a link the survivor has.
    Removed,
}

/// A link a merge moved or removed: as it was, and where it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovedLink {
    #[serde(flatten)]
    pub was: LinkRow,
    pub outcome: LinkOutcome,
    /// The link's contacts after the merge (as before when removed).
    pub now_from_contact_id: ContactId,
    pub now_to_contact_id: ContactId,
}

/// What a merge into `survivor` does to `links` (every link of the survivor and of the `merged`
/// contacts): each link of a merged contact is moved to the survivor, unless it would link the
/// survivor to itself or repeat one it has, in which case it is removed. The survivor's own links
/// are untouched (and not returned).
pub fn plan_links(links: &[LinkRow], survivor: ContactId, merged: &[ContactId]) -> Vec<MovedLink> {
    let to_survivor = |id: ContactId| if merged.contains(&id) { survivor } else { id };
    let key = |from: ContactId, to: ContactId, link: &LinkRow| {
        let (from, to) = if link.symmetric && to < from {
            (to, from)
        } else {
            (from, to)
        };
        (from, to, link.kind.clone())
    };
    let touches_merged = |link: &LinkRow| {
        merged.contains(&link.from_contact_id) || merged.contains(&link.to_contact_id)
    };
    let mut taken: HashSet<(ContactId, ContactId, String)> = links
        .iter()
        .filter(|link| !touches_merged(link))
        .map(|link| key(link.from_contact_id, link.to_contact_id, link))
        .collect();
    let mut planned = Vec::new();
    let mut ordered: Vec<&LinkRow> = links.iter().filter(|link| touches_merged(link)).collect();
    ordered.sort_by_key(|link| link.id);
    for link in ordered {
        let (from, to) = (
            to_survivor(link.from_contact_id),
            to_survivor(link.to_contact_id),
        );
        let (now_from, now_to, _) = key(from, to, link);
        let removed = from == to || !taken.insert(key(from, to, link));
        planned.push(MovedLink {
            was: link.clone(),
            outcome: if removed {
                LinkOutcome::Removed
            } else {
                LinkOutcome::Moved
            },
            now_from_contact_id: if removed {
                link.from_contact_id
            } else {
                now_from
            },
            now_to_contact_id: if removed { link.to_contact_id } else { now_to },
        });
    }
    planned
}

/// Something a merged contact had (a call, a note, a consent record) or was attached to (a tag, a
/// static list), by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The merged contact it belonged to (and goes back to on undo).
    pub contact_id: ContactId,
    pub id: Uuid,
}

/// The survivor's preferences before and after a merge that changed them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferencesChange {
    pub before: Preferences,
    pub after: Preferences,
}

/// Everything a merge moved to the survivor (or would move, for a dry run): what undoing it moves
/// back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Moved {
    pub calls: Vec<Attachment>,
    pub notes: Vec<Attachment>,
    pub consent_records: Vec<Attachment>,
    /// The merged contacts' tags (each removed from it; the survivor carries every one).
    pub tags: Vec<Attachment>,
    /// The tags the survivor did not carry before the merge.
    pub tags_added: Vec<Uuid>,
    /// The merged contacts' static list memberships (the survivor is on every one of the lists).
    pub lists: Vec<Attachment>,
    /// The static lists the survivor was not on before the merge.
    pub lists_added: Vec<Uuid>,
    pub relationships: Vec<MovedLink>,
    /// Set when the merge changed the survivor's preferences.
    pub preferences: Option<PreferencesChange>,
}

/// The survivor's writable view after undoing a merge: each field the merge changed goes back to
/// what it was, the emails and phones the merge added are taken away and those it dropped are given
/// back. A field the merge changed and a later change changed again is a conflict (undoing would
/// lose that change): every such field is reported, at `/survivor/<field>`.
pub fn unmerged_view(
    before: &Contact,
    after: &Contact,
    now: &Contact,
) -> Result<Value, Vec<FieldError>> {
    let members = |c: &Contact| match c.writable_view() {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let (before_view, after_view, now_view) = (members(before), members(after), members(now));
    let mut restored = now_view.clone();
    let mut conflicts = Vec::new();
    let mut fields: Vec<String> = FIELDS
        .iter()
        .filter(|f| !LIST_FIELDS.contains(f))
        .map(|f| (*f).to_owned())
        .collect();
    let custom_keys = |view: &Map<String, Value>| -> Vec<String> {
        view.get("custom")
            .and_then(Value::as_object)
            .map(|c| c.keys().map(|k| format!("custom.{k}")).collect())
            .unwrap_or_default()
    };
    fields.extend(custom_keys(&before_view));
    fields.extend(custom_keys(&after_view));
    fields.sort();
    fields.dedup();
    let read = |view: &Map<String, Value>, field: &str| -> Value {
        match field.strip_prefix("custom.") {
            Some(key) => view.get("custom").and_then(|c| c.get(key)).cloned(),
            None => view.get(field).cloned(),
        }
        .unwrap_or(Value::Null)
    };
    for field in fields {
        let (was, merged, current) = (
            read(&before_view, &field),
            read(&after_view, &field),
            read(&now_view, &field),
        );
        if was == merged {
            continue;
        }
        if current != merged {
            conflicts.push(FieldError::new(
                format!("/survivor/{}", field.replace('.', "/")),
                "changed_since_merge",
                "changed since the merge: undoing it would lose that change",
            ));
            continue;
        }
        match field.strip_prefix("custom.") {
            Some(key) => {
                let custom = restored
                    .entry("custom")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(custom) = custom.as_object_mut() {
                    if was.is_null() {
                        custom.remove(key);
                    } else {
                        custom.insert(key.to_owned(), was);
                    }
                }
            }
            None if was.is_null() => {
                restored.remove(&field);
            }
            None => {
                restored.insert(field, was);
            }
        }
    }
    let email_key = |e: &Value| {
        e.get("address")
            .and_then(Value::as_str)
            .map(str::to_lowercase)
    };
    let e164 = |c: &Contact| -> Vec<(String, String)> {
        c.phones
            .iter()
            .map(|p| (p.number.clone(), p.e164.clone()))
            .collect()
    };
    let phone_key = |numbers: Vec<(String, String)>| {
        move |p: &Value| {
            let raw = p.get("number").and_then(Value::as_str)?;
            numbers
                .iter()
                .find(|(number, _)| number == raw)
                .map(|(_, e164)| e164.clone())
        }
    };
    let mut all_numbers = e164(before);
    all_numbers.extend(e164(after));
    all_numbers.extend(e164(now));
    for (field, key) in [
        (
            "emails",
            Box::new(email_key) as Box<dyn Fn(&Value) -> Option<String>>,
        ),
        ("phones", Box::new(phone_key(all_numbers))),
    ] {
        let list = |view: &Map<String, Value>| -> Vec<Value> {
            view.get(field)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let keys =
            |entries: &[Value]| -> HashSet<String> { entries.iter().filter_map(&key).collect() };
        let (was, merged) = (list(&before_view), list(&after_view));
        let (was_keys, merged_keys) = (keys(&was), keys(&merged));
        let mut entries: Vec<Value> = list(&now_view)
            .into_iter()
            .filter(|e| key(e).is_none_or(|k| was_keys.contains(&k) || !merged_keys.contains(&k)))
            .collect();
        let kept = keys(&entries);
        for entry in was {
            if key(&entry).is_some_and(|k| !merged_keys.contains(&k) && !kept.contains(&k)) {
                entries.push(entry);
            }
        }
        let primaries = entries
            .iter()
            .filter(|e| e.get("primary") == Some(&Value::Bool(true)))
            .count();
        if primaries > 1 {
            for entry in entries.iter_mut().skip(1) {
                if let Some(members) = entry.as_object_mut() {
                    members.insert("primary".into(), Value::Bool(false));
                }
            }
        }
        if entries.is_empty() {
            restored.remove(field);
        } else {
            restored.insert(field.to_owned(), Value::Array(entries));
        }
    }
    if conflicts.is_empty() {
        Ok(Value::Object(restored))
    } else {
        Err(conflicts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::{ContactEmail, ContactPhone};
    use chrono::{Duration, Utc};
    use serde_json::json;

    fn contact(first: &str, emails: &[&str], company: Option<&str>, age_minutes: i64) -> Contact {
        let at = Utc::now() - Duration::minutes(age_minutes);
        Contact {
            id: ContactId::generate(),
            first_name: Some(first.into()),
            last_name: None,
            display_name: first.into(),
            emails: emails
                .iter()
                .enumerate()
                .map(|(i, a)| ContactEmail {
                    address: (*a).into(),
                    label: None,
                    primary: i == 0,
                })
                .collect(),
            phones: Vec::new(),
            company: company.map(str::to_owned),
            job_title: None,
            address: None,
            lifecycle_stage: None,
            owner_id: None,
            source: None,
            custom: Map::new(),
            display_name_explicit: false,
            last_contacted_at: None,
            version: 1,
            created_at: at,
            updated_at: at,
            deleted_at: None,
            merged_into: None,
        }
    }

    fn request(target: ContactId, others: &[&Contact], rules: Value) -> MergeRequest {
        let draft: MergeDraft = serde_json::from_value(json!({
            "contact_ids": others.iter().map(|c| c.id.to_string()).collect::<Vec<_>>(),
            "rules": rules,
        }))
        .unwrap();
        MergeRequest::parse(draft, target).unwrap()
    }

    #[test]
    fn fields_follow_their_rules() {
        let target = contact("Ada", &["ada@example.com"], None, 60);
        let mut other = contact(
            "Augusta",
            &["ADA@example.com", "al@example.com"],
            Some("Analytical"),
            1,
        );
        other.custom.insert("tier".into(), json!("gold"));
        let merge = request(
            target.id,
            &[&other],
            json!({"first_name": "most_recent", "job_title": {"value": "Countess"}}),
        );
        let view = merge.merged_view(&target, &[other]).unwrap();
        assert_eq!(view["first_name"], "Augusta");
        assert_eq!(view["company"], "Analytical", "first non-empty by default");
        assert_eq!(view["job_title"], "Countess");
        assert_eq!(view["custom"]["tier"], "gold");
        let emails: Vec<&str> = view["emails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["address"].as_str().unwrap())
            .collect();
        assert_eq!(
            emails,
            ["ada@example.com", "al@example.com"],
            "united, each once"
        );
        assert_eq!(view["emails"][1]["primary"], false);
    }

    #[test]
    fn the_target_rule_keeps_an_empty_value() {
        let target = contact("Ada", &[], None, 1);
        let other = contact("Al", &[], Some("Analytical"), 1);
        let merge = request(target.id, &[&other], json!({"company": "target"}));
        let view = merge.merged_view(&target, &[other]).unwrap();
        assert!(view.get("company").is_none());
    }

    #[test]
    fn too_many_emails_is_an_error_at_the_rule() {
        let addresses: Vec<String> = (0..6).map(|i| format!("a{i}@example.com")).collect();
        let others: Vec<String> = (0..6).map(|i| format!("b{i}@example.com")).collect();
        let target = contact(
            "Ada",
            &addresses.iter().map(String::as_str).collect::<Vec<_>>(),
            None,
            1,
        );
        let other = contact(
            "Al",
            &others.iter().map(String::as_str).collect::<Vec<_>>(),
            None,
            1,
        );
        let merge = request(target.id, &[&other], json!({}));
        let errors = merge.merged_view(&target, &[other]).unwrap_err();
        assert_eq!(errors.0[0].field, "/rules/emails");
    }

    #[test]
    fn a_request_reports_every_field_at_fault() {
        let target = ContactId::generate();
        let draft: MergeDraft = serde_json::from_value(json!({
            "contact_ids": [target.to_string(), "nope"],
            "rules": {"nickname": "target", "first_name": "union", "phones": "union"},
        }))
        .unwrap();
        let fields: Vec<String> = MergeRequest::parse(draft, target)
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "/contact_ids/0",
                "/contact_ids/1",
                "/rules/first_name",
                "/rules/nickname"
            ]
        );
    }

    #[test]
    fn links_move_to_the_survivor_without_self_links_or_repeats() {
        let (survivor, merged, other) = (
            ContactId::generate(),
            ContactId::generate(),
            ContactId::generate(),
        );
        let link = |from, to, kind: &str, symmetric| LinkRow {
            id: Uuid::now_v7(),
            from_contact_id: from,
            to_contact_id: to,
            kind: kind.into(),
            symmetric,
        };
        let links = vec![
            link(survivor, other, "manager", false),
            link(merged, other, "manager", false),
            link(merged, survivor, "colleague", true),
            link(other, merged, "parent", false),
        ];
        let plan = plan_links(&links, survivor, &[merged]);
        let outcomes: Vec<(&str, LinkOutcome)> = plan
            .iter()
            .map(|m| (m.was.kind.as_str(), m.outcome.clone()))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("manager", LinkOutcome::Removed),
                ("colleague", LinkOutcome::Removed),
                ("parent", LinkOutcome::Moved),
            ]
        );
        assert_eq!(plan[2].now_from_contact_id, other);
        assert_eq!(plan[2].now_to_contact_id, survivor);
    }

    #[test]
    fn undo_restores_what_the_merge_changed_and_keeps_later_changes_elsewhere() {
        let before = contact("Ada", &["ada@example.com"], None, 60);
        let mut after = before.clone();
        after.company = Some("Analytical".into());
        after.emails.push(ContactEmail {
            address: "al@example.com".into(),
            label: None,
            primary: false,
        });
        let mut now = after.clone();
        now.job_title = Some("Countess".into());
        now.phones.push(ContactPhone {
            number: "+44 20 7946 0000".into(),
            e164: "+442079460000".into(),
            region: "GB".into(),
            national: "020 7946 0000".into(),
            label: None,
            primary: true,
        });
        let view = unmerged_view(&before, &after, &now).unwrap();
        assert!(view.get("company").is_none());
        assert_eq!(view["job_title"], "Countess");
        assert_eq!(view["emails"].as_array().unwrap().len(), 1);
        assert_eq!(view["phones"].as_array().unwrap().len(), 1);

        now.company = Some("Babbage & Co".into());
        let conflicts = unmerged_view(&before, &after, &now).unwrap_err();
        assert_eq!(conflicts[0].field, "/survivor/company");
    }

    #[test]
    fn merged_preferences_keep_every_refusal() {
        let base = |email, language: Option<&str>| Preferences {
            contact_id: ContactId::generate(),
            preferred_channel: None,
            language: language.map(str::to_owned),
            time_zone: None,
            do_not_contact: DoNotContact {
                email,
                ..DoNotContact::default()
            },
            version: 1,
            updated_at: None,
        };
        let merged = merged_preferences(&base(false, None), &[base(true, Some("pt-BR"))]);
        assert!(merged.do_not_contact.email);
        assert_eq!(merged.language.as_deref(), Some("pt-BR"));
    }
}
