//! Contact storage. SQL lives here as constants; rows decode into domain types.

use crate::search::conditions::{self, ListMembership};
use crm_domain::contact::filter::ContactFilter;
use crm_domain::contact::{Contact, ContactEmail, ContactPhone, NewContact};
use crm_domain::list::ListSummary;
use crm_domain::{AuditRecordId, CallId, ContactId, ListId, TenantId};
use crm_platform::store::db::{Db, DbError, Row, SqlBuilder, SqlValue, Tx};
use crm_platform::store::lists as store_lists;
use serde_json::{json, Value};

pub const EMAIL_TAKEN: &str = "contact_emails_live_address_key";

/// The contacts of a write as one JSON record set (`$2`), one record per contact: [`record`].
macro_rules! contact_records {
    () => {
        "input as (
            select * from jsonb_to_recordset($2) as c(
                id uuid, first_name text, last_name text, display_name text,
                display_name_explicit boolean, company text, job_title text, address jsonb,
                lifecycle_stage text, owner_id text, source text, custom jsonb, emails jsonb,
                phones jsonb, emails_changed boolean, phones_changed boolean))"
    };
}

/// The emails and the phones of the contacts in `input` whose lists are written (all of a new
/// contact's; an updated contact's list when it changed: a second statement after the update,
/// since rows deleted and re-inserted under the same keys cannot share one).
macro_rules! insert_lists {
    () => {
        "emails as (
            insert into contact_emails (tenant_id, contact_id, position, address, address_key, label, is_primary)
            select $1, i.id, e.position, e.address, e.address_key, e.label, e.is_primary
            from input i cross join lateral jsonb_to_recordset(i.emails)
                as e(position smallint, address text, address_key text, label text, is_primary boolean)
            where i.emails_changed
        ), phones as (
            insert into contact_phones (tenant_id, contact_id, position, raw, e164, region, national, label, is_primary)
            select $1, i.id, p.position, p.raw, p.e164, p.region, p.national, p.label, p.is_primary
            from input i cross join lateral jsonb_to_recordset(i.phones)
                as p(position smallint, raw text, e164 text, region text, national text, label text, is_primary boolean)
            where i.phones_changed
        )"
    };
}

/// Inserts the contacts with their emails and phones in one statement, however many.
const INSERT: &str = concat!(
    "with ",
    contact_records!(),
    ", contact as (
        insert into contacts (tenant_id, id, first_name, last_name, display_name, display_name_explicit,
                              company, job_title, address, lifecycle_stage, owner_id, source, custom)
        select $1, id, first_name, last_name, display_name, display_name_explicit, company,
               job_title, address, lifecycle_stage, owner_id, source, custom
        from input
        returning id, version, rfc3339(created_at) as created_at, rfc3339(updated_at) as updated_at,
                  rfc3339(last_contacted_at) as last_contacted_at
    ), ",
    insert_lists!(),
    " select * from contact"
);

/// Replaces every writable column of the contacts, bumps their versions, and clears the lists that
/// changed for [`INSERT_LISTS`].
const UPDATE: &str = concat!(
    "with ",
    contact_records!(),
    ", contact as (
        update contacts c
        set first_name = i.first_name, last_name = i.last_name, display_name = i.display_name,
            display_name_explicit = i.display_name_explicit, company = i.company,
            job_title = i.job_title, address = i.address, lifecycle_stage = i.lifecycle_stage,
            owner_id = i.owner_id, source = i.source, custom = i.custom, version = c.version + 1
        from input i
        where c.tenant_id = $1 and c.id = i.id
        returning c.id, c.version, rfc3339(c.created_at) as created_at,
                  rfc3339(c.updated_at) as updated_at, rfc3339(c.last_contacted_at) as last_contacted_at
    ), emails as (
        delete from contact_emails
        where tenant_id = $1 and contact_id in (select id from input where emails_changed)
    ), phones as (
        delete from contact_phones
        where tenant_id = $1 and contact_id in (select id from input where phones_changed)
    )
    select * from contact"
);

const INSERT_LISTS: &str = concat!(
    "with ",
    contact_records!(),
    ", ",
    insert_lists!(),
    " select 1"
);

/// Soft delete (`$3` true) or restore (`$3` false); a contact's emails are unique only while live.
const SET_DELETED: &str = "
    with contact as (
        update contacts
        set deleted_at = case when $3 then now() else null end, version = version + 1
        where tenant_id = $1 and id = $2
        returning id
    )
    update contact_emails set live = not $3
    where tenant_id = $1 and contact_id in (select id from contact)";

const ERASE: &str = "select erase_contact($1, $2)";
const CALLS_OF: &str = "select id from calls where tenant_id = $1 and contact_id = $2";

/// The columns of a contact as the API returns it, emails and phones aggregated in position order.
macro_rules! select_contact {
    ($extra:literal, $tail:literal) => {
        select_contact!($extra, from " from contacts c ", $tail)
    };
    ($extra:literal, from $from:literal, $tail:literal) => {
        concat!(
            "select c.id, c.first_name, c.last_name, c.display_name, c.version,
                    rfc3339(c.created_at) as created_at, rfc3339(c.updated_at) as updated_at,
                    rfc3339(c.deleted_at) as deleted_at,
                    coalesce((select jsonb_agg(jsonb_build_object(
                                'address', e.address, 'label', e.label, 'primary', e.is_primary)
                              order by e.position)
                              from contact_emails e
                              where e.tenant_id = c.tenant_id and e.contact_id = c.id), '[]'::jsonb)
                      as emails,
                    coalesce((select jsonb_agg(jsonb_build_object(
                                'number', p.raw, 'e164', p.e164, 'region', p.region,
                                'national', p.national, 'label', p.label, 'primary', p.is_primary)
                              order by p.position)
                              from contact_phones p
                              where p.tenant_id = c.tenant_id and p.contact_id = c.id), '[]'::jsonb)
                      as phones,
                    c.company, c.job_title, c.address, c.lifecycle_stage, c.owner_id, c.source,
                    c.display_name_explicit, rfc3339(c.last_contacted_at) as last_contacted_at,
                    c.custom, c.merged_into",
            $extra,
            $from,
            $tail
        )
    };
}

pub const FIND: &str = select_contact!("", "where c.tenant_id = $1 and c.id = $2");
/// [`FIND`] as one call that sets the tenant too (migration 0015 restates its columns).
pub const FIND_ALONE: &str = "select * from contact_by_id($1, $2)";
const FIND_FOR_UPDATE: &str =
    select_contact!("", "where c.tenant_id = $1 and c.id = $2 for update of c");
/// The contacts `$2`, locked in id order (so that two merges of overlapping contacts lock them in
/// the same order).
const FIND_ALL_FOR_UPDATE: &str = select_contact!(
    "",
    "where c.tenant_id = $1 and c.id = any($2::text[]::uuid[]) order by c.id for update of c"
);
const FIND_LIVE_BY_EMAIL_FOR_UPDATE: &str = select_contact!(
    "",
    "where c.tenant_id = $1 and c.deleted_at is null and c.id = (
         select contact_id from contact_emails
         where tenant_id = $1 and live and address_key = $2)
     for update of c"
);
/// The live contacts holding any of the email keys `$2`, each with the key it holds, locked for an
/// update, in id order (so that two batches lock their contacts in the same order).
const FIND_LIVE_BY_EMAILS_FOR_UPDATE: &str = select_contact!(
    ", e.address_key as matched_key",
    "join contact_emails e on e.tenant_id = c.tenant_id and e.contact_id = c.id
     where c.tenant_id = $1 and c.deleted_at is null and e.live and e.address_key = any($2)
     order by c.id
     for update of c"
);
const LIVE_HOLDERS_OF_EMAILS: &str = "
    select address_key, contact_id from contact_emails
    where tenant_id = $1 and live and address_key = any($2)";
/// The contacts of a page whose ids (and sort keys) the statement `{found}` chose, in its order
/// `{order}`: a page is found first and read whole after, so that what a contact's representation
/// costs (its emails, its phones) weighs nothing in how the page is found. Each found contact is
/// read by its primary key (`limit 1` keeps the lateral a probe per row: as a join, an export's
/// page of a thousand was planned as a hash of every contact of the tenant, a sequential scan of
/// all of them for each page).
pub(crate) const PAGE_OF_FOUND: &str = select_contact!(
    ", found.sort_key",
    from " from ({found}) found cross join lateral (
        select * from contacts k where k.tenant_id = $1 and k.id = found.id limit 1) c ",
    "order by {order}"
);
const LIVE_OWNER_OF_EMAIL: &str = "
    select contact_id from contact_emails
    where tenant_id = $1 and live and address_key = any($2) order by contact_id limit 1";
const HISTORY: &str = "
    select a.id, c.ordinality as position, a.actor, a.actor_type, a.action,
           rfc3339(a.occurred_at) as at,
           a.request_id, c.value as change
    from audit_log a cross join lateral jsonb_array_elements(a.changes) with ordinality as c(value, ordinality)
    where a.tenant_id = $1 and a.entity_type = 'contact' and a.entity_id = $2
      and ($3::uuid is null or a.id < $3 or (a.id = $3 and c.ordinality > $4))
    order by a.id desc, c.ordinality asc
    limit $5";

/// Which of a contact's lists a write replaces.
#[derive(Clone, Copy)]
struct Lists {
    emails: bool,
    phones: bool,
}

impl Lists {
    /// A new contact's: both.
    const ALL: Lists = Lists {
        emails: true,
        phones: true,
    };

    /// Those `after` holds otherwise than `before` (their entries, labels or order): an update
    /// that leaves a contact's phones as they were neither deletes nor re-inserts them.
    fn changed(before: &Contact, after: &NewContact) -> Lists {
        let after = after.to_contact(
            before.id,
            before.version,
            before.created_at,
            before.updated_at,
        );
        Lists {
            emails: after.emails != before.emails,
            phones: after.phones != before.phones,
        }
    }
}

/// One record of [`contact_records`]: the contact's writable columns, and the emails and phones
/// of the lists it writes (an empty array for a list left as it is).
fn record(id: ContactId, contact: &NewContact, lists: Lists) -> Value {
    let emails: Vec<Value> = match lists.emails {
        false => Vec::new(),
        true => contact
            .emails
            .iter()
            .enumerate()
            .map(|(position, email)| {
                json!({
                    "position": position,
                    "address": email.address.as_str(),
                    "address_key": email.address.key(),
                    "label": email.label.clone().map(|l| l.into_inner()),
                    "is_primary": email.primary,
                })
            })
            .collect(),
    };
    let phones: Vec<Value> = match lists.phones {
        false => Vec::new(),
        true => contact
            .phones
            .iter()
            .enumerate()
            .map(|(position, phone)| {
                json!({
                    "position": position,
                    "raw": phone.number.raw(),
                    "e164": phone.number.e164(),
                    "region": phone.number.region().to_string(),
                    "national": phone.number.national(),
                    "label": phone.label.clone().map(|l| l.into_inner()),
                    "is_primary": phone.primary,
                })
            })
            .collect(),
    };
    json!({
        "id": id,
        "first_name": contact.first_name.as_ref().map(|n| n.as_str()),
        "last_name": contact.last_name.as_ref().map(|n| n.as_str()),
        "display_name": contact.display_name.as_str(),
        "display_name_explicit": contact.display_name_explicit,
        "company": contact.company,
        "job_title": contact.job_title,
        "address": contact.address,
        "lifecycle_stage": contact.lifecycle_stage.map(|s| s.as_str()),
        "owner_id": contact.owner_id,
        "source": contact.source,
        "custom": contact.custom,
        "emails": emails,
        "phones": phones,
        "emails_changed": lists.emails,
        "phones_changed": lists.phones,
    })
}

/// The record set of `contacts` (each with the lists it writes), and the statement's parameters
/// with it.
fn records(tenant: TenantId, contacts: &[(ContactId, &NewContact, Lists)]) -> [SqlValue; 2] {
    let records: Vec<Value> = contacts
        .iter()
        .map(|(id, contact, lists)| record(*id, contact, *lists))
        .collect();
    [tenant.into(), Value::Array(records).into()]
}

/// Each of `contacts` as stored, from the rows a write returned (matched by id).
fn stored_all(
    contacts: &[(ContactId, &NewContact)],
    rows: &[Row],
) -> Result<Vec<Contact>, DbError> {
    let mut by_id = std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        by_id.insert(row.get::<ContactId>("id")?, row);
    }
    contacts
        .iter()
        .map(|(id, contact)| {
            let row = by_id
                .get(id)
                .ok_or_else(|| DbError::Query(format!("contact {id} was not written")))?;
            stored(*id, contact, row)
        })
        .collect()
}

/// Stores new contacts, however many, in one statement and returns them as stored, in order.
///
/// # Errors
/// MUST return the violation of [`EMAIL_TAKEN`] when a live contact of the tenant has one of their
/// emails (or two of them share one).
pub async fn insert(
    tx: &Tx,
    tenant: TenantId,
    contacts: &[(ContactId, &NewContact)],
) -> Result<Vec<Contact>, DbError> {
    let all: Vec<(ContactId, &NewContact, Lists)> = contacts
        .iter()
        .map(|(id, c)| (*id, *c, Lists::ALL))
        .collect();
    let rows = tx.query(INSERT, &records(tenant, &all)).await?;
    stored_all(contacts, &rows)
}

/// Replaces the writable fields of locked, live contacts (each as it was, and as it is to be),
/// however many, and returns them as stored, in order: one statement, and a second that writes the
/// emails and phones of those whose lists changed (an upsert of a job title rewrites neither).
///
/// # Errors
/// As [`insert`] for emails held by another live contact.
pub async fn update(
    tx: &Tx,
    tenant: TenantId,
    contacts: &[(&Contact, &NewContact)],
) -> Result<Vec<Contact>, DbError> {
    let all: Vec<(ContactId, &NewContact, Lists)> = contacts
        .iter()
        .map(|(before, after)| (before.id, *after, Lists::changed(before, after)))
        .collect();
    let params = records(tenant, &all);
    let rows = tx.query(UPDATE, &params).await?;
    if all.iter().any(|(_, _, lists)| lists.emails || lists.phones) {
        tx.execute(INSERT_LISTS, &params).await?;
    }
    let ids: Vec<(ContactId, &NewContact)> = all.iter().map(|(id, c, _)| (*id, *c)).collect();
    stored_all(&ids, &rows)
}

/// The contact as stored: the validated input plus what the database set (`version`,
/// `created_at`, `updated_at`, `last_contacted_at`) from `row`.
fn stored(id: ContactId, contact: &NewContact, row: &Row) -> Result<Contact, DbError> {
    let mut stored = contact.to_contact(
        id,
        row.get("version")?,
        row.get("created_at")?,
        row.get("updated_at")?,
    );
    stored.last_contacted_at = row.get("last_contacted_at")?;
    Ok(stored)
}

/// Soft-deletes (`deleted` true) or restores a contact and returns it as stored.
///
/// # Errors
/// On restore, as [`insert`] when another live contact took one of its emails meanwhile.
pub async fn set_deleted(
    tx: &Tx,
    tenant: TenantId,
    id: ContactId,
    deleted: bool,
) -> Result<Contact, DbError> {
    tx.execute(
        SET_DELETED,
        &[tenant.into(), id.as_uuid().into(), deleted.into()],
    )
    .await?;
    found(find(tx, tenant, id).await?)
}

/// Removes the contact and scrubs its personal data from the audit trail, the outbox and stored
/// idempotent responses (the `erase_contact` database function).
pub async fn erase(tx: &Tx, tenant: TenantId, id: ContactId) -> Result<bool, DbError> {
    tx.query_one(ERASE, &[tenant.into(), id.as_uuid().into()])
        .await?
        .get(0)
}

/// The ids of the contact's calls (erasure removes them with it).
pub async fn calls_of(tx: &Tx, tenant: TenantId, id: ContactId) -> Result<Vec<CallId>, DbError> {
    tx.query(CALLS_OF, &[tenant.into(), id.into()])
        .await?
        .iter()
        .map(|row| row.get("id"))
        .collect()
}

fn found(contact: Option<Contact>) -> Result<Contact, DbError> {
    contact.ok_or_else(|| DbError::Query("the contact vanished inside its own transaction".into()))
}

/// The live contacts holding any of the email `keys`, locked for an update: `(key, contact)` for
/// each key held.
pub async fn find_live_by_emails_for_update(
    tx: &Tx,
    tenant: TenantId,
    keys: Vec<String>,
) -> Result<Vec<(String, Contact)>, DbError> {
    tx.query(
        FIND_LIVE_BY_EMAILS_FOR_UPDATE,
        &[tenant.into(), SqlValue::TextArray(keys)],
    )
    .await?
    .iter()
    .map(|row| Ok((row.get("matched_key")?, contact_from_row(row)?)))
    .collect()
}

/// Which live contact holds each of the email `keys` that one holds.
pub async fn live_holders_of_emails(
    tx: &Tx,
    tenant: TenantId,
    keys: Vec<String>,
) -> Result<Vec<(String, ContactId)>, DbError> {
    tx.query(
        LIVE_HOLDERS_OF_EMAILS,
        &[tenant.into(), SqlValue::TextArray(keys)],
    )
    .await?
    .iter()
    .map(|row| Ok((row.get("address_key")?, row.get("contact_id")?)))
    .collect()
}

/// The contact, read in one call that also sets the tenant (`contact_by_id`, migration 0015): the
/// read by id of `GET /contacts/{id}`, outside any transaction.
pub async fn find_alone(
    db: &Db,
    tenant: TenantId,
    id: ContactId,
) -> Result<Option<Contact>, DbError> {
    db.call(FIND_ALONE, &[tenant.into(), id.as_uuid().into()])
        .await?
        .first()
        .map(contact_from_row)
        .transpose()
}

pub async fn find(tx: &Tx, tenant: TenantId, id: ContactId) -> Result<Option<Contact>, DbError> {
    tx.query_opt(FIND, &[tenant.into(), id.as_uuid().into()])
        .await?
        .map(|row| contact_from_row(&row))
        .transpose()
}

/// The contact, locked until the transaction ends.
pub async fn find_for_update(
    tx: &Tx,
    tenant: TenantId,
    id: ContactId,
) -> Result<Option<Contact>, DbError> {
    tx.query_opt(FIND_FOR_UPDATE, &[tenant.into(), id.as_uuid().into()])
        .await?
        .map(|row| contact_from_row(&row))
        .transpose()
}

/// The contacts of `ids` that exist, locked until the transaction ends, in id order.
pub async fn find_all_for_update(
    tx: &Tx,
    tenant: TenantId,
    ids: &[ContactId],
) -> Result<Vec<Contact>, DbError> {
    tx.query(
        FIND_ALL_FOR_UPDATE,
        &[tenant.into(), SqlValue::id_array(ids)],
    )
    .await?
    .iter()
    .map(contact_from_row)
    .collect()
}

/// The live contact holding the email whose duplicate key is `email_key`, locked.
pub async fn find_live_by_email_for_update(
    tx: &Tx,
    tenant: TenantId,
    email_key: &str,
) -> Result<Option<Contact>, DbError> {
    tx.query_opt(
        FIND_LIVE_BY_EMAIL_FOR_UPDATE,
        &[tenant.into(), email_key.into()],
    )
    .await?
    .map(|row| contact_from_row(&row))
    .transpose()
}

/// The lists the contact is on, by name: the static lists that hold it and those of `smart` whose
/// saved filter matches it (if it is live); one statement however many lists there are.
pub async fn lists_of(
    tx: &Tx,
    tenant: TenantId,
    contact: ContactId,
    smart: &[(ListId, ContactFilter)],
) -> Result<Vec<ListSummary>, DbError> {
    let mut query = SqlBuilder::new(
        "select l.id, l.name, l.kind from lists l where l.tenant_id = $1 and l.id in (
            select m.list_id from list_members m where m.tenant_id = $1 and m.contact_id = $2",
        vec![tenant.into(), contact.into()],
    );
    for (list, filter) in smart {
        query.push(" union all select ?::uuid where exists (select 1 from contacts c where c.tenant_id = $1 and c.id = $2 and c.deleted_at is null", [(*list).into()]);
        push_conditions(&mut query, filter);
        query.raw(")");
    }
    query.raw(") order by lower(l.name), l.id");
    tx.query(&query.sql, &query.params)
        .await?
        .iter()
        .map(store_lists::summary_from_row)
        .collect()
}

/// Appends the conditions of `filter` (not its sort, not `include_deleted`) on the contact `c`,
/// compiled by the search's one compiler.
fn push_conditions(query: &mut SqlBuilder, filter: &ContactFilter) {
    conditions::push_all(query, &filter.conditions(), &ListMembership::new());
}

/// The live contact that already holds one of `email_keys`.
pub async fn live_owner_of_email(
    tx: &Tx,
    tenant: TenantId,
    email_keys: Vec<String>,
) -> Result<Option<ContactId>, DbError> {
    let row = tx
        .query_opt(
            LIVE_OWNER_OF_EMAIL,
            &[tenant.into(), SqlValue::TextArray(email_keys)],
        )
        .await?;
    row.map(|row| row.get(0).map(ContactId::from_uuid))
        .transpose()
}

/// One field-level change in a contact's history.
#[derive(Debug, serde::Serialize)]
pub struct HistoryEntry {
    #[serde(skip)]
    pub audit_id: AuditRecordId,
    #[serde(skip)]
    pub position: i64,
    pub field: String,
    pub old: Value,
    pub new: Value,
    pub action: String,
    pub actor: String,
    /// `user`, `api_client`, `import_job`, `workflow_rule` or `system`.
    pub actor_type: String,
    pub at: String,
    pub request_id: String,
}

/// Field-level changes, newest record first, fields in order, after `(audit_id, position)`.
pub async fn history(
    tx: &Tx,
    tenant: TenantId,
    id: ContactId,
    after: Option<(AuditRecordId, i64)>,
    limit: i64,
) -> Result<Vec<HistoryEntry>, DbError> {
    let (after_id, after_position) = after.map_or((None, 0), |(id, position)| (Some(id), position));
    tx.query(
        HISTORY,
        &[
            tenant.into(),
            id.as_uuid().into(),
            after_id.into(),
            SqlValue::Int(after_position),
            SqlValue::Int(limit),
        ],
    )
    .await?
    .iter()
    .map(|row| {
        let change: Value = row.get("change")?;
        Ok(HistoryEntry {
            audit_id: row.get("id")?,
            position: row.get("position")?,
            actor: row.get("actor")?,
            actor_type: row.get("actor_type")?,
            action: row.get("action")?,
            at: row.get("at")?,
            request_id: row.get("request_id")?,
            field: change["field"].as_str().unwrap_or_default().to_owned(),
            old: change["old"].clone(),
            new: change["new"].clone(),
        })
    })
    .collect()
}

pub(crate) fn contact_from_row(row: &Row) -> Result<Contact, DbError> {
    let emails: Vec<ContactEmail> = row.json("emails")?;
    let phones: Vec<ContactPhone> = row.json("phones")?;
    let address: Option<Value> = row.get("address")?;
    let stage: Option<String> = row.get("lifecycle_stage")?;
    Ok(Contact {
        id: row.get("id")?,
        first_name: row.get("first_name")?,
        last_name: row.get("last_name")?,
        display_name: row.get("display_name")?,
        version: row.get("version")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
        deleted_at: row.get("deleted_at")?,
        emails,
        phones,
        company: row.get("company")?,
        job_title: row.get("job_title")?,
        address: address
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| DbError::Decode {
                column: "address".into(),
                expected: "a postal address",
                found: e.to_string(),
            })?,
        lifecycle_stage: stage
            .and_then(|s| crm_domain::contact::LifecycleStage::parse(&s, "").ok()),
        owner_id: row.get("owner_id")?,
        source: row.get("source")?,
        display_name_explicit: row.get("display_name_explicit")?,
        last_contacted_at: row.get("last_contacted_at")?,
        merged_into: row.get("merged_into")?,
        custom: match row.get::<Value>("custom")? {
            Value::Object(values) => values,
            other => {
                return Err(DbError::Decode {
                    column: "custom".into(),
                    expected: "an object of custom field values",
                    found: other.to_string(),
                })
            }
        },
    })
}
