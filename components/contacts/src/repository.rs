//! Contact storage. SQL lives here as constants; rows decode into domain types.

use crm_domain::contact::{Contact, ContactEmail, ContactPhone, NewContact};
use crm_domain::{ContactId, Region, TenantId};
use crm_platform::db::{DbError, Row, SqlValue, Tx};
use serde_json::{json, Value};

/// Inserts the contact with its emails and phones in one statement.
const INSERT: &str = "
    with contact as (
        insert into contacts (tenant_id, id, first_name, last_name, display_name)
        values ($1, $2, $3, $4, $5)
        returning version, rfc3339(created_at) as created_at, rfc3339(updated_at) as updated_at
    ), emails as (
        insert into contact_emails (tenant_id, contact_id, position, address, address_key, label, is_primary)
        select $1, $2, e.position, e.address, e.address_key, e.label, e.is_primary
        from jsonb_to_recordset($6) as e(position smallint, address text, address_key text, label text, is_primary boolean)
    ), phones as (
        insert into contact_phones (tenant_id, contact_id, position, raw, e164, region, national, label, is_primary)
        select $1, $2, p.position, p.raw, p.e164, p.region, p.national, p.label, p.is_primary
        from jsonb_to_recordset($7) as p(position smallint, raw text, e164 text, region text, national text, label text, is_primary boolean)
    )
    select version, created_at, updated_at from contact";

/// The columns of a contact as the API returns it, emails and phones aggregated in position order.
macro_rules! select_contact {
    ($tail:literal) => {
        concat!(
            "select c.id, c.first_name, c.last_name, c.display_name, c.version,
                    rfc3339(c.created_at), rfc3339(c.updated_at), rfc3339(c.deleted_at),
                    coalesce((select jsonb_agg(jsonb_build_object(
                                'address', e.address, 'label', e.label, 'primary', e.is_primary)
                              order by e.position)
                              from contact_emails e
                              where e.tenant_id = c.tenant_id and e.contact_id = c.id), '[]'::jsonb),
                    coalesce((select jsonb_agg(jsonb_build_object(
                                'number', p.raw, 'e164', p.e164, 'region', p.region,
                                'national', p.national, 'label', p.label, 'primary', p.is_primary)
                              order by p.position)
                              from contact_phones p
                              where p.tenant_id = c.tenant_id and p.contact_id = c.id), '[]'::jsonb)
             from contacts c ",
            $tail
        )
    };
}

const FIND: &str = select_contact!("where c.tenant_id = $1 and c.id = $2");
const LIST: &str = select_contact!(
    "where c.tenant_id = $1 and c.deleted_at is null and ($2::uuid is null or c.id > $2)
     order by c.id limit $3"
);
const TENANT_REGION: &str = "select default_region from tenants where id = $1";
const LIVE_OWNER_OF_EMAIL: &str = "
    select contact_id from contact_emails
    where tenant_id = $1 and live and address_key = any($2) order by contact_id limit 1";

pub const EMAIL_TAKEN: &str = "contact_emails_live_address_key";

/// The tenant's default phone region, if it set one.
pub async fn tenant_region(tx: &Tx, tenant: TenantId) -> Result<Option<Region>, DbError> {
    let row = tx.query_opt(TENANT_REGION, &[tenant.into()]).await?;
    Ok(match row {
        Some(row) => Region::parse(&row.get::<String>(0)?),
        None => None,
    })
}

/// Stores `contact` and returns it as stored.
///
/// # Errors
/// MUST return the violation of [`EMAIL_TAKEN`] when a live contact of the tenant has one of its emails.
pub async fn insert(
    tx: &Tx,
    tenant: TenantId,
    id: ContactId,
    contact: &NewContact,
) -> Result<Contact, DbError> {
    let emails: Vec<Value> = contact
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
        .collect();
    let phones: Vec<Value> = contact
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
        .collect();
    let row = tx
        .query_one(
            INSERT,
            &[
                tenant.into(),
                id.as_uuid().into(),
                contact.first_name.as_ref().map(|n| n.as_str()).into(),
                contact.last_name.as_ref().map(|n| n.as_str()).into(),
                contact.display_name.as_str().into(),
                Value::Array(emails).into(),
                Value::Array(phones).into(),
            ],
        )
        .await?;
    Ok(Contact {
        id,
        first_name: contact.first_name.as_ref().map(|n| n.as_str().to_owned()),
        last_name: contact.last_name.as_ref().map(|n| n.as_str().to_owned()),
        display_name: contact.display_name.as_str().to_owned(),
        emails: contact
            .emails
            .iter()
            .map(|e| ContactEmail {
                address: e.address.as_str().to_owned(),
                label: e.label.clone().map(|l| l.into_inner()),
                primary: e.primary,
            })
            .collect(),
        phones: contact
            .phones
            .iter()
            .map(|p| ContactPhone {
                number: p.number.raw().to_owned(),
                e164: p.number.e164().to_owned(),
                region: p.number.region().to_string(),
                national: p.number.national().to_owned(),
                label: p.label.clone().map(|l| l.into_inner()),
                primary: p.primary,
            })
            .collect(),
        version: row.get(0)?,
        created_at: row.get(1)?,
        updated_at: row.get(2)?,
        deleted_at: None,
    })
}

pub async fn find(tx: &Tx, tenant: TenantId, id: ContactId) -> Result<Option<Contact>, DbError> {
    tx.query_opt(FIND, &[tenant.into(), id.as_uuid().into()])
        .await?
        .map(|row| contact_from_row(&row))
        .transpose()
}

/// Up to `limit` live contacts after `after`, in id (creation) order.
pub async fn list(
    tx: &Tx,
    tenant: TenantId,
    after: Option<ContactId>,
    limit: i64,
) -> Result<Vec<Contact>, DbError> {
    tx.query(
        LIST,
        &[
            tenant.into(),
            after.map(|id| id.as_uuid()).into(),
            SqlValue::Int(limit),
        ],
    )
    .await?
    .iter()
    .map(contact_from_row)
    .collect()
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

/// The JSON column at `index` as a list of `T`.
fn json_list<T: serde::de::DeserializeOwned>(row: &Row, index: usize) -> Result<Vec<T>, DbError> {
    serde_json::from_value(row.get::<Value>(index)?).map_err(|e| DbError::Decode {
        column: index.to_string(),
        expected: "a list of contact entries",
        found: e.to_string(),
    })
}

fn contact_from_row(row: &Row) -> Result<Contact, DbError> {
    Ok(Contact {
        id: ContactId::from_uuid(row.get(0)?),
        first_name: row.get(1)?,
        last_name: row.get(2)?,
        display_name: row.get(3)?,
        version: row.get(4)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
        deleted_at: row.get(7)?,
        emails: json_list(row, 8)?,
        phones: json_list(row, 9)?,
    })
}
