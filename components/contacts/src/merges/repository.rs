//! Merge storage: what a merge would move, moving it and moving it back, and the merge records.
//! Each is one statement, however many rows it moves.

use crm_domain::contact::merge::{Attachment, LinkRow, Moved, MovedLink};
use crm_domain::contact::Contact;
use crm_domain::preferences::Preferences;
use crm_domain::relationship::RelationshipType;
use crm_domain::{ContactId, MergeId, TenantId};
use crm_platform::store::db::{DbError, Row, SqlValue, Tx};
use serde_json::{json, Value};

/// What the merged contacts (`$3`) have, what the survivor (`$2`) is attached to, every link of
/// any of them (`$4`: all their ids) and everyone's preferences, read in one statement.
const HOLDINGS: &str = "
    select
      coalesce((select jsonb_agg(jsonb_build_object('contact_id', contact_id, 'id', id) order by id)
                from calls where tenant_id = $1 and contact_id = any($3::text[]::uuid[])), '[]') as calls,
      coalesce((select jsonb_agg(jsonb_build_object('contact_id', contact_id, 'id', id) order by id)
                from contact_notes where tenant_id = $1 and contact_id = any($3::text[]::uuid[])), '[]') as notes,
      coalesce((select jsonb_agg(jsonb_build_object('contact_id', contact_id, 'id', id) order by id)
                from consent_records where tenant_id = $1 and contact_id = any($3::text[]::uuid[])), '[]')
        as consent_records,
      coalesce((select jsonb_agg(jsonb_build_object('contact_id', contact_id, 'id', tag_id)
                                 order by contact_id, tag_id)
                from contact_tags where tenant_id = $1 and contact_id = any($3::text[]::uuid[])), '[]') as tags,
      coalesce((select jsonb_agg(tag_id) from contact_tags where tenant_id = $1 and contact_id = $2), '[]')
        as survivor_tags,
      coalesce((select jsonb_agg(jsonb_build_object('contact_id', contact_id, 'id', list_id)
                                 order by contact_id, list_id)
                from list_members where tenant_id = $1 and contact_id = any($3::text[]::uuid[])), '[]') as lists,
      coalesce((select jsonb_agg(list_id) from list_members where tenant_id = $1 and contact_id = $2), '[]')
        as survivor_lists,
      coalesce((select jsonb_agg(jsonb_build_object(
                    'id', r.id, 'from_contact_id', r.from_contact, 'to_contact_id', r.to_contact,
                    'type', r.type, 'forward_name', t.forward_name, 'reverse_name', t.reverse_name)
                  order by r.id)
                from contact_relationships r
                left join relationship_types t on t.tenant_id = r.tenant_id and t.id::text = r.type
                where r.tenant_id = $1
                  and (r.from_contact = any($4::text[]::uuid[]) or r.to_contact = any($4::text[]::uuid[]))), '[]')
        as links,
      coalesce((select jsonb_agg(jsonb_build_object(
                    'contact_id', contact_id, 'preferred_channel', preferred_channel,
                    'language', language, 'time_zone', time_zone,
                    'do_not_contact', jsonb_build_object('email', do_not_email, 'phone', do_not_phone,
                                                         'sms', do_not_sms, 'post', do_not_post),
                    'version', version, 'updated_at', rfc3339(updated_at)))
                from contact_preferences where tenant_id = $1 and contact_id = any($4::text[]::uuid[])), '[]')
        as preferences";

/// Marks the contacts `$3` merged into `$2` (deleted, their emails no longer live) and gives the
/// survivor the latest call of them all.
const MARK_MERGED: &str = "
    with merged as (
        update contacts
        set deleted_at = now(), merged_into = $2, version = version + 1
        where tenant_id = $1 and id = any($3::text[]::uuid[])
        returning id, version, rfc3339(deleted_at) as deleted_at, rfc3339(updated_at) as updated_at
    ), emails as (
        update contact_emails set live = false
        where tenant_id = $1 and contact_id = any($3::text[]::uuid[])
    ), survivor as (
        update contacts s
        set last_contacted_at = (select max(c.last_contacted_at) from contacts c
                                 where c.tenant_id = $1 and (c.id = $2 or c.id = any($3::text[]::uuid[])))
        where s.tenant_id = $1 and s.id = $2
    )
    select * from merged";

/// Moves what the merged contacts (`$3`) had to the survivor (`$2`): calls, notes and consent
/// records by id, tags and static lists by attachment, links repointed or removed.
const MOVE: &str = "
    with calls as (
        update calls set contact_id = $2 where tenant_id = $1 and id = any($4::text[]::uuid[])
    ), notes as (
        update contact_notes set contact_id = $2 where tenant_id = $1 and id = any($5::text[]::uuid[])
    ), consents as (
        update consent_records set contact_id = $2 where tenant_id = $1 and id = any($6::text[]::uuid[])
    ), tags_gone as (
        delete from contact_tags where tenant_id = $1 and contact_id = any($3::text[]::uuid[])
    ), tags_added as (
        insert into contact_tags (tenant_id, contact_id, tag_id)
        select $1, $2, unnest($7::text[]::uuid[]) on conflict do nothing
    ), lists_gone as (
        delete from list_members where tenant_id = $1 and contact_id = any($3::text[]::uuid[])
    ), lists_added as (
        insert into list_members (tenant_id, list_id, contact_id)
        select $1, unnest($8::text[]::uuid[]), $2 on conflict do nothing
    ), links_gone as (
        delete from contact_relationships where tenant_id = $1 and id = any($9::text[]::uuid[])
    ), links_moved as (
        update contact_relationships r set from_contact = m.from_contact, to_contact = m.to_contact
        from jsonb_to_recordset($10) as m(id uuid, from_contact uuid, to_contact uuid)
        where r.tenant_id = $1 and r.id = m.id
    )
    select 1";

/// Where each thing a merge moved is now: the contact of each moved call, note and consent record
/// (`$2`, `$3`, `$4`), the contacts of each moved link (`$5`), and who holds live any of the email
/// keys `$6` but the survivor (`$7`).
const WHERE_NOW: &str = "
    select
      coalesce((select jsonb_object_agg(id, contact_id) from calls
                where tenant_id = $1 and id = any($2::text[]::uuid[])), '{}') as calls,
      coalesce((select jsonb_object_agg(id, contact_id) from contact_notes
                where tenant_id = $1 and id = any($3::text[]::uuid[])), '{}') as notes,
      coalesce((select jsonb_object_agg(id, contact_id) from consent_records
                where tenant_id = $1 and id = any($4::text[]::uuid[])), '{}') as consent_records,
      coalesce((select jsonb_object_agg(id, jsonb_build_array(from_contact, to_contact))
                from contact_relationships
                where tenant_id = $1 and id = any($5::text[]::uuid[])), '{}') as links,
      coalesce((select jsonb_object_agg(address_key, contact_id) from contact_emails
                where tenant_id = $1 and live and address_key = any($6) and contact_id <> $7), '{}')
        as email_holders";

/// Undoes [`MARK_MERGED`]: the contacts `$2` are live again.
const UNMARK_MERGED: &str = "
    with restored as (
        update contacts
        set deleted_at = null, merged_into = null, version = version + 1
        where tenant_id = $1 and id = any($2::text[]::uuid[])
        returning id, version, rfc3339(deleted_at) as deleted_at, rfc3339(updated_at) as updated_at
    ), emails as (
        update contact_emails set live = true
        where tenant_id = $1 and contact_id in (select id from restored)
    )
    select * from restored";

/// Moves back what [`MOVE`] moved to the survivor `$2`: each call, note and consent record still
/// on the survivor to the contact it came from, the tags and lists the merge added taken off the
/// survivor and given back to their contacts (those that still exist), links repointed back and
/// removed ones recreated.
const MOVE_BACK: &str = "
    with calls as (
        update calls c set contact_id = m.contact_id
        from jsonb_to_recordset($3) as m(contact_id uuid, id uuid)
        where c.tenant_id = $1 and c.id = m.id and c.contact_id = $2
    ), notes as (
        update contact_notes n set contact_id = m.contact_id
        from jsonb_to_recordset($4) as m(contact_id uuid, id uuid)
        where n.tenant_id = $1 and n.id = m.id and n.contact_id = $2
    ), consents as (
        update consent_records r set contact_id = m.contact_id
        from jsonb_to_recordset($5) as m(contact_id uuid, id uuid)
        where r.tenant_id = $1 and r.id = m.id and r.contact_id = $2
    ), tags_off as (
        delete from contact_tags where tenant_id = $1 and contact_id = $2 and tag_id = any($6::text[]::uuid[])
    ), tags_back as (
        insert into contact_tags (tenant_id, contact_id, tag_id)
        select $1, m.contact_id, m.id from jsonb_to_recordset($7) as m(contact_id uuid, id uuid)
        where exists (select 1 from tags t where t.tenant_id = $1 and t.id = m.id)
        on conflict do nothing
    ), lists_off as (
        delete from list_members where tenant_id = $1 and contact_id = $2 and list_id = any($8::text[]::uuid[])
    ), lists_back as (
        insert into list_members (tenant_id, list_id, contact_id)
        select $1, m.id, m.contact_id from jsonb_to_recordset($9) as m(contact_id uuid, id uuid)
        where exists (select 1 from lists l where l.tenant_id = $1 and l.id = m.id and l.kind = 'static')
        on conflict do nothing
    ), links_back as (
        update contact_relationships r set from_contact = m.from_contact, to_contact = m.to_contact
        from jsonb_to_recordset($10) as m(id uuid, from_contact uuid, to_contact uuid)
        where r.tenant_id = $1 and r.id = m.id
    ), links_recreated as (
        insert into contact_relationships (tenant_id, id, from_contact, to_contact, type)
        select $1, m.id, m.from_contact, m.to_contact, m.type
        from jsonb_to_recordset($11) as m(id uuid, from_contact uuid, to_contact uuid, type text)
        where exists (select 1 from contacts k where k.tenant_id = $1 and k.id = m.from_contact)
          and exists (select 1 from contacts k where k.tenant_id = $1 and k.id = m.to_contact)
        on conflict do nothing
    )
    select 1";

const INSERT_MERGE: &str = "
    insert into contact_merges (tenant_id, id, survivor_id, merged_ids, survivor_before,
                                survivor_after, merged_before, moved, actor_type, actor, expires_at)
    values ($1, $2, $3, $4::text[]::uuid[], $5, $6, $7, $8, $9, $10, now() + $11::int8 * interval '1 day')
    returning {merge}";
const MERGE_COLUMNS: &str = "id, survivor_id, merged_ids::text[] as merged_ids, survivor_before,
    survivor_after, merged_before, moved, actor_type, actor, rfc3339(merged_at) as merged_at,
    rfc3339(expires_at) as expires_at, rfc3339(undone_at) as undone_at, expires_at < now() as expired";
const FIND_MERGE: &str = "select {merge} from contact_merges where tenant_id = $1 and id = $2";
const FIND_MERGE_FOR_UPDATE: &str =
    "select {merge} from contact_merges where tenant_id = $1 and id = $2 for update";
const MARK_UNDONE: &str = "
    update contact_merges set undone_at = now() where tenant_id = $1 and id = $2
    returning {merge}";

fn merge_sql(template: &str) -> String {
    template.replace("{merge}", MERGE_COLUMNS)
}

/// A contact as a merge record keeps it: its representation and whether its display name was
/// given (which the representation leaves out, and undoing the merge needs).
fn snapshot(contact: &Contact) -> Value {
    let mut value = serde_json::to_value(contact).unwrap_or(Value::Null);
    if let Some(members) = value.as_object_mut() {
        members.insert(
            "display_name_explicit".into(),
            Value::Bool(contact.display_name_explicit),
        );
    }
    value
}

fn from_snapshot(value: Value) -> Result<Contact, DbError> {
    let explicit = value.get("display_name_explicit") == Some(&Value::Bool(true));
    let mut contact: Contact = serde_json::from_value(value).map_err(|e| DbError::Decode {
        column: "a merge's contact snapshot".into(),
        expected: "a contact",
        found: e.to_string(),
    })?;
    contact.display_name_explicit = explicit;
    Ok(contact)
}

/// What the merged contacts have and the survivor is attached to.
#[derive(Debug)]
pub struct Holdings {
    pub calls: Vec<Attachment>,
    pub notes: Vec<Attachment>,
    pub consent_records: Vec<Attachment>,
    pub tags: Vec<Attachment>,
    pub survivor_tags: Vec<uuid::Uuid>,
    pub lists: Vec<Attachment>,
    pub survivor_lists: Vec<uuid::Uuid>,
    /// Every link of the survivor and of the merged contacts.
    pub links: Vec<LinkRow>,
    /// The preferences of those that have set theirs.
    pub preferences: Vec<Preferences>,
}

/// A link as [`HOLDINGS`] reads it: a tenant type's names, absent for a built-in type.
#[derive(serde::Deserialize)]
struct LinkWithNames {
    id: uuid::Uuid,
    from_contact_id: ContactId,
    to_contact_id: ContactId,
    #[serde(rename = "type")]
    kind: String,
    forward_name: Option<String>,
    reverse_name: Option<String>,
}

impl LinkWithNames {
    fn symmetric(&self) -> bool {
        match (&self.forward_name, &self.reverse_name) {
            (Some(forward), Some(reverse)) => forward.eq_ignore_ascii_case(reverse),
            _ => RelationshipType::built_in(&self.kind).is_some_and(|t| t.symmetric()),
        }
    }
}

pub async fn holdings(
    tx: &Tx,
    tenant: TenantId,
    survivor: ContactId,
    merged: &[ContactId],
) -> Result<Holdings, DbError> {
    let everyone = std::iter::once(survivor).chain(merged.iter().copied());
    let row = tx
        .query_one(
            HOLDINGS,
            &[
                tenant.into(),
                survivor.into(),
                SqlValue::id_array(merged),
                SqlValue::id_array(everyone),
            ],
        )
        .await?;
    let links: Vec<LinkWithNames> = row.json("links")?;
    Ok(Holdings {
        calls: row.json("calls")?,
        notes: row.json("notes")?,
        consent_records: row.json("consent_records")?,
        tags: row.json("tags")?,
        survivor_tags: row.json("survivor_tags")?,
        lists: row.json("lists")?,
        survivor_lists: row.json("survivor_lists")?,
        links: links
            .iter()
            .map(|link| LinkRow {
                id: link.id,
                from_contact_id: link.from_contact_id,
                to_contact_id: link.to_contact_id,
                kind: link.kind.clone(),
                symmetric: link.symmetric(),
            })
            .collect(),
        preferences: row.json("preferences")?,
    })
}

/// Marks `merged` merged into `survivor`: each as stored now, from `before` (in the same order).
pub async fn mark_merged(
    tx: &Tx,
    tenant: TenantId,
    survivor: ContactId,
    before: &[Contact],
) -> Result<Vec<Contact>, DbError> {
    let rows = tx
        .query(
            MARK_MERGED,
            &[
                tenant.into(),
                survivor.into(),
                SqlValue::id_array(before.iter().map(|c| c.id)),
            ],
        )
        .await?;
    marked(before, &rows, Some(survivor))
}

/// Moves to `survivor` what `moved` says (the merged contacts are `merged`).
pub async fn move_to(
    tx: &Tx,
    tenant: TenantId,
    survivor: ContactId,
    merged: &[ContactId],
    moved: &Moved,
) -> Result<(), DbError> {
    let of = |items: &[Attachment]| SqlValue::id_array(items.iter().map(|a| a.id));
    let (removed, repointed): (Vec<&MovedLink>, Vec<&MovedLink>) = moved
        .relationships
        .iter()
        .partition(|link| link.outcome == crm_domain::contact::merge::LinkOutcome::Removed);
    let repointed: Vec<Value> = repointed
        .iter()
        .map(|link| {
            json!({"id": link.was.id, "from_contact": link.now_from_contact_id,
                   "to_contact": link.now_to_contact_id})
        })
        .collect();
    tx.execute(
        MOVE,
        &[
            tenant.into(),
            survivor.into(),
            SqlValue::id_array(merged),
            of(&moved.calls),
            of(&moved.notes),
            of(&moved.consent_records),
            SqlValue::id_array(&moved.tags_added),
            SqlValue::id_array(&moved.lists_added),
            SqlValue::id_array(removed.iter().map(|link| link.was.id)),
            SqlValue::Json(Value::Array(repointed)),
        ],
    )
    .await?;
    Ok(())
}

/// Where each thing a merge moved is now, and who else holds the merged contacts' emails.
#[derive(Debug, serde::Deserialize)]
pub struct WhereNow {
    pub calls: std::collections::HashMap<uuid::Uuid, Option<ContactId>>,
    pub notes: std::collections::HashMap<uuid::Uuid, ContactId>,
    pub consent_records: std::collections::HashMap<uuid::Uuid, ContactId>,
    pub links: std::collections::HashMap<uuid::Uuid, (ContactId, ContactId)>,
    pub email_holders: std::collections::HashMap<String, ContactId>,
}

pub async fn where_now(
    tx: &Tx,
    tenant: TenantId,
    survivor: ContactId,
    moved: &Moved,
    email_keys: Vec<String>,
) -> Result<WhereNow, DbError> {
    let of = |items: &[Attachment]| SqlValue::id_array(items.iter().map(|a| a.id));
    let row = tx
        .query_one(
            WHERE_NOW,
            &[
                tenant.into(),
                of(&moved.calls),
                of(&moved.notes),
                of(&moved.consent_records),
                SqlValue::id_array(moved.relationships.iter().map(|link| link.was.id)),
                SqlValue::TextArray(email_keys),
                survivor.into(),
            ],
        )
        .await?;
    Ok(WhereNow {
        calls: row.json("calls")?,
        notes: row.json("notes")?,
        consent_records: row.json("consent_records")?,
        links: row.json("links")?,
        email_holders: row.json("email_holders")?,
    })
}

/// Makes the merged contacts live again; each as stored now, from `merged` (in the same order).
///
/// # Errors
/// The violation of the live email key when another contact took one of their emails meanwhile.
pub async fn unmark_merged(
    tx: &Tx,
    tenant: TenantId,
    merged: &[Contact],
) -> Result<Vec<Contact>, DbError> {
    let rows = tx
        .query(
            UNMARK_MERGED,
            &[
                tenant.into(),
                SqlValue::id_array(merged.iter().map(|c| c.id)),
            ],
        )
        .await?;
    marked(merged, &rows, None)
}

/// Each of `before` as a statement that (un)marked it merged left it (`rows`: its id, version,
/// `deleted_at` and `updated_at`), merged into `merged_into`.
fn marked(
    before: &[Contact],
    rows: &[Row],
    merged_into: Option<ContactId>,
) -> Result<Vec<Contact>, DbError> {
    before
        .iter()
        .map(|contact| {
            let row = rows
                .iter()
                .find(|row| row.get::<ContactId>("id").is_ok_and(|id| id == contact.id))
                .ok_or_else(|| DbError::Query(format!("contact {} was not changed", contact.id)))?;
            let mut after = contact.clone();
            after.version = row.get("version")?;
            after.deleted_at = row.get("deleted_at")?;
            after.updated_at = row.get("updated_at")?;
            after.merged_into = merged_into;
            Ok(after)
        })
        .collect()
}

/// Moves back from `survivor` what `moved` says a merge moved to it.
pub async fn move_back(
    tx: &Tx,
    tenant: TenantId,
    survivor: ContactId,
    moved: &Moved,
) -> Result<(), DbError> {
    let attachments = |items: &[Attachment]| SqlValue::Json(json!(items));
    let (removed, repointed): (Vec<&MovedLink>, Vec<&MovedLink>) = moved
        .relationships
        .iter()
        .partition(|link| link.outcome == crm_domain::contact::merge::LinkOutcome::Removed);
    let as_was = |links: &[&MovedLink]| {
        SqlValue::Json(Value::Array(
            links
                .iter()
                .map(|link| {
                    json!({"id": link.was.id, "from_contact": link.was.from_contact_id,
                           "to_contact": link.was.to_contact_id, "type": link.was.kind})
                })
                .collect(),
        ))
    };
    tx.execute(
        MOVE_BACK,
        &[
            tenant.into(),
            survivor.into(),
            attachments(&moved.calls),
            attachments(&moved.notes),
            attachments(&moved.consent_records),
            SqlValue::id_array(&moved.tags_added),
            attachments(&moved.tags),
            SqlValue::id_array(&moved.lists_added),
            attachments(&moved.lists),
            as_was(&repointed),
            as_was(&removed),
        ],
    )
    .await?;
    Ok(())
}

/// A merge as stored.
#[derive(Debug, Clone)]
pub struct MergeRecord {
    pub id: MergeId,
    pub survivor_id: ContactId,
    pub merged_ids: Vec<ContactId>,
    pub survivor_before: Contact,
    pub survivor_after: Contact,
    pub merged_before: Vec<Contact>,
    pub moved: Moved,
    pub actor_type: String,
    pub actor: String,
    pub merged_at: String,
    pub expires_at: String,
    pub undone_at: Option<String>,
    pub expired: bool,
}

/// What a new merge record holds.
pub struct NewMerge<'a> {
    pub survivor_before: &'a Contact,
    pub survivor_after: &'a Contact,
    pub merged_before: &'a [Contact],
    pub moved: &'a Moved,
    pub actor_type: &'a str,
    pub actor: &'a str,
    pub undo_days: u64,
}

pub async fn insert(
    tx: &Tx,
    tenant: TenantId,
    merge: NewMerge<'_>,
) -> Result<MergeRecord, DbError> {
    let row = tx
        .query_one(
            &merge_sql(INSERT_MERGE),
            &[
                tenant.into(),
                MergeId::generate().into(),
                merge.survivor_after.id.into(),
                SqlValue::id_array(merge.merged_before.iter().map(|c| c.id)),
                SqlValue::Json(snapshot(merge.survivor_before)),
                SqlValue::Json(snapshot(merge.survivor_after)),
                SqlValue::Json(Value::Array(
                    merge.merged_before.iter().map(snapshot).collect(),
                )),
                SqlValue::Json(serde_json::to_value(merge.moved).map_err(|e| {
                    DbError::Query(format!("a merge record does not serialise: {e}"))
                })?),
                merge.actor_type.into(),
                merge.actor.into(),
                SqlValue::Int(
                    i64::try_from(merge.undo_days)
                        .unwrap_or(i64::MAX)
                        .min(36_500),
                ),
            ],
        )
        .await?;
    merge_from_row(&row)
}

/// The merge, locked for its undo when `lock`.
pub async fn find(
    tx: &Tx,
    tenant: TenantId,
    id: MergeId,
    lock: bool,
) -> Result<Option<MergeRecord>, DbError> {
    let sql = merge_sql(if lock {
        FIND_MERGE_FOR_UPDATE
    } else {
        FIND_MERGE
    });
    tx.query_opt(&sql, &[tenant.into(), id.into()])
        .await?
        .map(|row| merge_from_row(&row))
        .transpose()
}

pub async fn mark_undone(tx: &Tx, tenant: TenantId, id: MergeId) -> Result<MergeRecord, DbError> {
    let row = tx
        .query_one(&merge_sql(MARK_UNDONE), &[tenant.into(), id.into()])
        .await?;
    merge_from_row(&row)
}

fn merge_from_row(row: &Row) -> Result<MergeRecord, DbError> {
    let merged_ids: Vec<String> = row.get("merged_ids")?;
    Ok(MergeRecord {
        id: row.get("id")?,
        survivor_id: row.get("survivor_id")?,
        merged_ids: merged_ids
            .iter()
            .filter_map(|id| ContactId::parse(id))
            .collect(),
        survivor_before: from_snapshot(row.get("survivor_before")?)?,
        survivor_after: from_snapshot(row.get("survivor_after")?)?,
        merged_before: row
            .json::<Vec<Value>>("merged_before")?
            .into_iter()
            .map(from_snapshot)
            .collect::<Result<_, _>>()?,
        moved: row.json("moved")?,
        actor_type: row.get("actor_type")?,
        actor: row.get("actor")?,
        merged_at: row.get("merged_at")?,
        expires_at: row.get("expires_at")?,
        undone_at: row.get("undone_at")?,
        expired: row.get("expired")?,
    })
}
