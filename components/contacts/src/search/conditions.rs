//! The SQL of a filter tree ([`crm_domain::contact::search::Node`]) on the contact `c`: one
//! compiler for the search, the contacts list's query parameters and smart lists' saved filters.
//!
//! Every value is a parameter but custom field keys, which are written into the statement so that
//! an expression index on a field (`crm search-indexes`) matches it; a key is `[a-z][a-z0-9_]*`,
//! checked when its field was defined and again here.

use crm_domain::contact::search::{Bound, Condition, CustomKind, Node, SortKind, Target, Test};
use crm_domain::custom_field::parse_key;
use crm_domain::ListId;
use crm_platform::store::db::{SqlBuilder, SqlValue};
use serde_json::{json, Value};
use std::collections::HashMap;

/// What the lists a tree names are: a static list's members are stored; a smart list's are those
/// its saved conditions match. A list missing here matches no one (it was checked before).
pub type ListMembership = HashMap<ListId, Option<Vec<Node>>>;

/// The SQL of `custom ->> key` and friends, for a key checked to be an identifier.
pub fn custom_text(key: &str) -> String {
    format!("(c.custom ->> '{}')", identifier(key))
}

/// A number field's value as `numeric` (null for anything that is not a JSON number, so that the
/// expression never fails and can be indexed).
pub fn custom_number(key: &str) -> String {
    let key = identifier(key);
    format!("(case when jsonb_typeof(c.custom -> '{key}') = 'number' then (c.custom ->> '{key}')::numeric end)")
}

/// A custom field's value as it sorts, and as its index (`crm search-indexes`) holds it: never
/// null, a contact without the value sorting lowest.
pub fn custom_sort(key: &str, kind: SortKind) -> String {
    match kind {
        SortKind::Number => format!("coalesce({}, '-Infinity'::numeric)", custom_number(key)),
        SortKind::Text => format!("lower(coalesce({}, ''))", custom_text(key)),
        SortKind::Boolean => format!("coalesce({}, '')", custom_text(key)),
    }
}

/// `key` if it is a custom field key ([`parse_key`]), or a key that can match nothing.
fn identifier(key: &str) -> &str {
    if parse_key(key).is_ok() {
        key
    } else {
        "_"
    }
}

/// Appends ` and <condition>` for each of `nodes`.
pub fn push_all(query: &mut SqlBuilder, nodes: &[Node], lists: &ListMembership) {
    for node in nodes {
        query.raw(" and ");
        push(query, node, lists);
    }
}

/// Appends the boolean SQL of `node`. A negation is true for a contact without the value:
/// `not coalesce(<positive>, false)`.
pub fn push(query: &mut SqlBuilder, node: &Node, lists: &ListMembership) {
    match node {
        // An empty `and` holds, an empty `or` does not.
        // PostgreSQL evaluates a group's members in the order written: the cheap ones (a column
        // of the contact) first, those that read another table last.
        Node::All(nodes) | Node::Any(nodes) => {
            let (empty, joint) = if matches!(node, Node::All(_)) {
                ("true", " and ")
            } else {
                ("false", " or ")
            };
            query.raw("(");
            if nodes.is_empty() {
                query.raw(empty);
            }
            let mut nodes: Vec<&Node> = nodes.iter().collect();
            nodes.sort_by_key(|node| cost(node));
            for (index, node) in nodes.into_iter().enumerate() {
                if index > 0 {
                    query.raw(joint);
                }
                push(query, node, lists);
            }
            query.raw(")");
        }
        Node::Not(node) => {
            query.raw("not coalesce(");
            push(query, node, lists);
            query.raw(", false)");
        }
        Node::Condition(condition) => push_condition(query, condition, lists),
    }
}

/// How much evaluating `node` for one contact costs, in rough classes: a column of the contact, a
/// custom value (its jsonb), another table.
fn cost(node: &Node) -> u32 {
    match node {
        Node::All(nodes) | Node::Any(nodes) => nodes.iter().map(cost).sum(),
        Node::Not(node) => cost(node),
        Node::Condition(Condition { target, .. }) => match target {
            Target::Text { .. } | Target::Time(_) => 1,
            Target::Custom { .. } => 2,
            _ => 10,
        },
    }
}

const EMAILS: &str =
    "select 1 from contact_emails e where e.tenant_id = c.tenant_id and e.contact_id = c.id";
const PHONES: &str =
    "select 1 from contact_phones p where p.tenant_id = c.tenant_id and p.contact_id = c.id";
const TAGS: &str =
    "select 1 from contact_tags t where t.tenant_id = c.tenant_id and t.contact_id = c.id";
const PREFERENCES: &str =
    "select 1 from contact_preferences p where p.tenant_id = c.tenant_id and p.contact_id = c.id";
/// The status of the contact's latest consent record for the purpose `?` that is in effect.
const LATEST_CONSENT: &str = "(select r.status from consent_records r
    where r.tenant_id = c.tenant_id and r.contact_id = c.id and r.purpose = ? and r.effective_at <= now()
    order by r.effective_at desc, r.id desc limit 1)";

fn texts(values: &[Value]) -> Vec<String> {
    values
        .iter()
        .map(|v| match v {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// `expression = ?` for one value, `= any(?::text[])` for several.
fn one_of(query: &mut SqlBuilder, expression: &str, values: &[Value]) {
    match texts(values).as_slice() {
        [one] => query.push(&format!("{expression} = ?"), [one.clone().into()]),
        many => query.push(
            &format!("{expression} = any(?::text[])"),
            [SqlValue::TextArray(many.to_vec())],
        ),
    };
}

/// A `like` pattern matching `text` literally, after (`%text%`) or at the start (`text%`).
fn pattern(text: &str, anywhere: bool) -> SqlValue {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    if anywhere {
        format!("%{escaped}%").into()
    } else {
        format!("{escaped}%").into()
    }
}

fn range(
    query: &mut SqlBuilder,
    expression: &str,
    lower: &Option<Bound>,
    upper: &Option<Bound>,
    cast: &str,
) {
    let mut parts = Vec::new();
    if let Some(bound) = lower {
        parts.push((if bound.inclusive { ">=" } else { ">" }, &bound.value));
    }
    if let Some(bound) = upper {
        parts.push((if bound.inclusive { "<=" } else { "<" }, &bound.value));
    }
    query.raw("(");
    for (index, (operator, value)) in parts.into_iter().enumerate() {
        if index > 0 {
            query.raw(" and ");
        }
        query.push(
            &format!("{expression} {operator} ?::text{cast}"),
            texts(std::slice::from_ref(value))
                .into_iter()
                .map(SqlValue::from),
        );
    }
    query.raw(")");
}

fn push_condition(query: &mut SqlBuilder, condition: &Condition, lists: &ListMembership) {
    let Condition { target, test } = condition;
    match (target, test) {
        (Target::Text { column, fold }, test) => {
            let plain = format!("c.{column}");
            let lowered = format!("lower(c.{column})");
            let expression = if *fold { &lowered } else { &plain };
            match test {
                Test::OneOf(values) => one_of(query, expression, values),
                Test::Range { lower, upper } => range(query, expression, lower, upper, ""),
                Test::Contains(text) => {
                    query.push(&format!("{lowered} like ?"), [pattern(text, true)]);
                }
                Test::StartsWith(text) => {
                    query.push(&format!("{lowered} like ?"), [pattern(text, false)]);
                }
                Test::Present => {
                    query.raw(&format!("({plain} is not null and {plain} <> '')"));
                }
            }
        }
        (Target::Time(column), test) => {
            let expression = format!("c.{column}");
            match test {
                Test::Range { lower, upper } => {
                    range(query, &expression, lower, upper, "::timestamptz");
                }
                _ => {
                    query.raw(&format!("{expression} is not null"));
                }
            }
        }
        (Target::Email, test) => {
            query.raw(&format!("exists ({EMAILS} and "));
            match test {
                Test::OneOf(values) => one_of(query, "e.address_key", values),
                Test::Contains(text) => {
                    query.push("lower(e.address) like ?", [pattern(text, true)]);
                }
                Test::StartsWith(text) => {
                    query.push("lower(e.address) like ?", [pattern(text, false)]);
                }
                _ => {
                    query.raw("true");
                }
            }
            query.raw(")");
        }
        (Target::Phone, test) => {
            query.raw(&format!("exists ({PHONES} and "));
            match test {
                Test::OneOf(values) => one_of(query, "p.e164", values),
                Test::StartsWith(text) | Test::Contains(text) => {
                    query.push("p.e164 like ?", [pattern(text, false)]);
                }
                _ => {
                    query.raw("true");
                }
            }
            query.raw(")");
        }
        (Target::Tags, Test::OneOf(ids)) => {
            // The ids are cast once (an init plan), not again for every contact the filter tries.
            query.push(
                &format!(
                    "exists ({TAGS} and t.tag_id = any(array(select unnest(?::text[])::uuid)))"
                ),
                [SqlValue::TextArray(texts(ids))],
            );
        }
        (Target::Tags, _) => {
            query.raw(&format!("exists ({TAGS})"));
        }
        (Target::Lists, test) => {
            let ids: Vec<ListId> = match test {
                Test::OneOf(ids) => ids
                    .iter()
                    .filter_map(Value::as_str)
                    .filter_map(ListId::parse)
                    .collect(),
                _ => Vec::new(),
            };
            query.raw("(false");
            for id in ids {
                query.raw(" or ");
                match lists.get(&id) {
                    Some(None) => {
                        query.push(
                            "exists (select 1 from list_members m where m.tenant_id = c.tenant_id and m.list_id = ? and m.contact_id = c.id)",
                            [id.into()],
                        );
                    }
                    Some(Some(saved)) => {
                        query.raw("(c.deleted_at is null");
                        push_all(query, saved, lists);
                        query.raw(")");
                    }
                    None => {
                        query.raw("false");
                    }
                }
            }
            query.raw(")");
        }
        (Target::PreferredChannel, test) => {
            query.raw(&format!("exists ({PREFERENCES} and "));
            match test {
                Test::OneOf(values) => one_of(query, "p.preferred_channel", values),
                _ => {
                    query.raw("p.preferred_channel is not null");
                }
            }
            query.raw(")");
        }
        (Target::Language, test) => {
            query.raw(&format!("exists ({PREFERENCES} and "));
            match test {
                Test::OneOf(values) => {
                    query.raw("(false");
                    for language in texts(values) {
                        query.push(
                            " or lower(p.language) = lower(?) or lower(p.language) like lower(?) || '-%'",
                            [language.clone().into(), language.into()],
                        );
                    }
                    query.raw(")");
                }
                _ => {
                    query.raw("p.language is not null");
                }
            }
            query.raw(")");
        }
        (Target::DoNotContact, test) => {
            // The flag columns are named from channels the reading checked, never from raw text.
            let channels: Vec<String> = match test {
                Test::OneOf(values) => texts(values),
                _ => crm_domain::preferences::CHANNELS
                    .iter()
                    .map(|c| (*c).to_owned())
                    .collect(),
            };
            let flags: Vec<String> = channels
                .iter()
                .filter(|c| crm_domain::preferences::CHANNELS.contains(&c.as_str()))
                .map(|c| format!("p.do_not_{c}"))
                .collect();
            let flags = if flags.is_empty() {
                "false".to_owned()
            } else {
                flags.join(" or ")
            };
            query.raw(&format!("exists ({PREFERENCES} and ({flags}))"));
        }
        (Target::Consent(purpose), Test::OneOf(statuses)) => {
            query.push(
                &format!("{LATEST_CONSENT} = any(?::text[])"),
                [
                    purpose.as_str().into(),
                    SqlValue::TextArray(texts(statuses)),
                ],
            );
        }
        (Target::Consent(purpose), _) => {
            query.push(
                "exists (select 1 from consent_records r where r.tenant_id = c.tenant_id and r.contact_id = c.id and r.purpose = ?)",
                [purpose.as_str().into()],
            );
        }
        (Target::Custom { key, kind }, test) => push_custom(query, key, *kind, test),
    }
}

fn push_custom(query: &mut SqlBuilder, key: &str, kind: CustomKind, test: &Test) {
    let text = custom_text(key);
    match test {
        // Containment reads the values' GIN index, whatever the field.
        Test::OneOf(values) => {
            query.raw("(false");
            for value in values {
                let stored = if kind == CustomKind::MultiSelect {
                    json!([value])
                } else {
                    value.clone()
                };
                query.push(
                    " or c.custom @> ?",
                    [SqlValue::Json(json!({ key: stored }))],
                );
            }
            query.raw(")");
        }
        // On the sort expression, which a field's own index holds; the lowest value is none.
        Test::Range { lower, upper } => {
            if kind == CustomKind::Number {
                let sorted = custom_sort(key, SortKind::Number);
                query.raw(&format!("({sorted} > '-Infinity'::numeric and "));
                range(query, &sorted, lower, upper, "::numeric");
            } else {
                let sorted = custom_sort(key, SortKind::Text);
                let lowered = |bound: &Option<Bound>| {
                    bound.as_ref().map(|b| Bound {
                        value: Value::String(
                            texts(std::slice::from_ref(&b.value))[0].to_lowercase(),
                        ),
                        inclusive: b.inclusive,
                    })
                };
                query.raw(&format!("({sorted} <> '' and "));
                range(query, &sorted, &lowered(lower), &lowered(upper), "");
            }
            query.raw(")");
        }
        Test::Contains(needle) => {
            query.push(&format!("lower({text}) like ?"), [pattern(needle, true)]);
        }
        Test::StartsWith(prefix) => {
            query.push(&format!("lower({text}) like ?"), [pattern(prefix, false)]);
        }
        // An empty text or an empty choice of options is no value.
        Test::Present => {
            let key = identifier(key);
            query.raw(&format!(
                "(jsonb_exists(c.custom, '{key}') and c.custom -> '{key}' not in ('null', '[]', '\"\"'))"
            ));
        }
    }
}
