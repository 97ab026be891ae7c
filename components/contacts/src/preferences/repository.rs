//! Preference storage: one row per contact, absent until first set.

use crm_domain::preferences::{DoNotContact, NewPreferences, Preferences};
use crm_domain::{ContactId, TenantId};
use crm_platform::store::db::{DbError, Row, Tx};

const COLUMNS: &str = "preferred_channel, language, time_zone, do_not_email, do_not_phone,
    do_not_sms, do_not_post, version, rfc3339(updated_at) as updated_at";

const FIND: &str =
    "select {columns} from contact_preferences where tenant_id = $1 and contact_id = $2";
const FIND_FOR_UPDATE: &str =
    "select {columns} from contact_preferences where tenant_id = $1 and contact_id = $2 for update";
const UPSERT: &str = "
    insert into contact_preferences as p (tenant_id, contact_id, preferred_channel, language,
        time_zone, do_not_email, do_not_phone, do_not_sms, do_not_post)
    values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    on conflict (tenant_id, contact_id) do update set
        preferred_channel = excluded.preferred_channel, language = excluded.language,
        time_zone = excluded.time_zone, do_not_email = excluded.do_not_email,
        do_not_phone = excluded.do_not_phone, do_not_sms = excluded.do_not_sms,
        do_not_post = excluded.do_not_post, version = p.version + 1
    returning {columns}";

fn sql(template: &str) -> String {
    template.replace("{columns}", COLUMNS)
}

/// The contact's preferences (the defaults, version 0, until first set).
pub async fn find(
    tx: &Tx,
    tenant: TenantId,
    contact: ContactId,
    lock: bool,
) -> Result<Preferences, DbError> {
    let statement = sql(if lock { FIND_FOR_UPDATE } else { FIND });
    Ok(tx
        .query_opt(&statement, &[tenant.into(), contact.into()])
        .await?
        .map(|row| preferences_from_row(contact, &row))
        .transpose()?
        .unwrap_or_else(|| Preferences::unset(contact)))
}

pub async fn upsert(
    tx: &Tx,
    tenant: TenantId,
    contact: ContactId,
    preferences: &NewPreferences,
) -> Result<Preferences, DbError> {
    let flags = preferences.do_not_contact;
    let row = tx
        .query_one(
            &sql(UPSERT),
            &[
                tenant.into(),
                contact.into(),
                preferences.preferred_channel.clone().into(),
                preferences.language.clone().into(),
                preferences.time_zone.clone().into(),
                flags.email.into(),
                flags.phone.into(),
                flags.sms.into(),
                flags.post.into(),
            ],
        )
        .await?;
    preferences_from_row(contact, &row)
}

fn preferences_from_row(contact: ContactId, row: &Row) -> Result<Preferences, DbError> {
    Ok(Preferences {
        contact_id: contact,
        preferred_channel: row.get("preferred_channel")?,
        language: row.get("language")?,
        time_zone: row.get("time_zone")?,
        do_not_contact: do_not_contact_from_row(row)?,
        version: row.get("version")?,
        updated_at: row.get("updated_at")?,
    })
}

/// The do-not-contact flags of a row with `do_not_email`, `do_not_phone`, `do_not_sms` and
/// `do_not_post` columns.
pub(crate) fn do_not_contact_from_row(row: &Row) -> Result<DoNotContact, DbError> {
    Ok(DoNotContact {
        email: row.get("do_not_email")?,
        phone: row.get("do_not_phone")?,
        sms: row.get("do_not_sms")?,
        post: row.get("do_not_post")?,
    })
}
