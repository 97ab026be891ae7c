//! What an export reads beside the contacts themselves: the columns a CSV export adds (custom
//! fields, consent purposes) and, for each page, the contacts' tags, preferences and consent.

use crm_domain::contact::export::Extras;
use crm_domain::preferences::DoNotContact;
use crm_domain::{ContactId, TenantId};
use crm_platform::store::db::{DbError, Row, SqlValue, Tx};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Every consent purpose the tenant has recorded, for the CSV header's consent columns.
const PURPOSES: &str =
    "select distinct purpose from consent_records where tenant_id = $1 order by purpose";

/// `$2`: a page's contact ids. Each one's tag names (in name order), preferences (a row only once
/// set) and each consent purpose's latest record in effect now.
const EXTRAS: &str = "
    select ids.id,
           coalesce(t.names, '{}') as tags,
           p.preferred_channel, p.language, p.time_zone,
           coalesce(p.do_not_email, false) as do_not_email,
           coalesce(p.do_not_phone, false) as do_not_phone,
           coalesce(p.do_not_sms, false) as do_not_sms,
           coalesce(p.do_not_post, false) as do_not_post,
           coalesce(k.consent, '{}'::jsonb) as consent
    from unnest($2::text[]::uuid[]) as ids(id)
    left join lateral (
        select array_agg(g.name order by lower(g.name)) as names
        from contact_tags ct join tags g on g.tenant_id = ct.tenant_id and g.id = ct.tag_id
        where ct.tenant_id = $1 and ct.contact_id = ids.id
    ) t on true
    left join contact_preferences p on p.tenant_id = $1 and p.contact_id = ids.id
    left join lateral (
        select jsonb_object_agg(latest.purpose, latest.status) as consent
        from (select distinct on (r.purpose) r.purpose, r.status
              from consent_records r
              where r.tenant_id = $1 and r.contact_id = ids.id and r.effective_at <= now()
              order by r.purpose, r.effective_at desc, r.id desc) latest
    ) k on true";

pub async fn purposes(tx: &Tx, tenant: TenantId) -> Result<Vec<String>, DbError> {
    tx.query(PURPOSES, &[tenant.into()])
        .await?
        .iter()
        .map(|row| row.get("purpose"))
        .collect()
}

pub async fn extras(
    tx: &Tx,
    tenant: TenantId,
    ids: &[ContactId],
) -> Result<HashMap<ContactId, Extras>, DbError> {
    tx.query(EXTRAS, &[tenant.into(), SqlValue::id_array(ids)])
        .await?
        .iter()
        .map(|row| Ok((row.get("id")?, extras_from_row(row)?)))
        .collect()
}

fn extras_from_row(row: &Row) -> Result<Extras, DbError> {
    let consent: Value = row.get("consent")?;
    let consent: BTreeMap<String, String> = consent
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(purpose, status)| Some((purpose.clone(), status.as_str()?.to_owned())))
        .collect();
    Ok(Extras {
        tags: row.get("tags")?,
        preferred_channel: row.get("preferred_channel")?,
        language: row.get("language")?,
        time_zone: row.get("time_zone")?,
        do_not_contact: DoNotContact {
            email: row.get("do_not_email")?,
            phone: row.get("do_not_phone")?,
            sms: row.get("do_not_sms")?,
            post: row.get("do_not_post")?,
        },
        consent,
    })
}
