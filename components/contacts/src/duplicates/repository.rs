//! Finding duplicate candidates: one statement walks a budget of live contacts in id order and
//! finds each one's partners through indexes (its mailboxes, its phones, its company's names).

use crm_domain::contact::duplicates::{CandidateContact, Reason};
use crm_domain::{ContactId, TenantId};
use crm_platform::store::db::{DbError, SqlValue, Tx};

/// `$2`/`$3`: the last pair of the previous page (or null), `$4`: how many contacts to walk,
/// `$5`: the one contact whose candidates are wanted (or null: every contact, in id order), `$6`:
/// how many pairs to return. A pair is found from its lower id's side (both sides for `$5`).
/// Names compare within a block: the same company, and a last name (else display name) starting
/// with the same two letters, at most 50 of them after the walked contact (a bound, so that one
/// large block cannot make a page slow); `tenant_contacts` lets the block's conditions use their
/// index (`contacts_duplicate_block`, migration 0031).
const PAGE: &str = "
    with walked as (
        select c.id from contacts c
        where c.tenant_id = $1 and c.deleted_at is null
          and case when $5::uuid is not null then c.id = $5::uuid
                   else ($2::uuid is null or c.id >= $2::uuid) end
        order by c.id
        limit $4
    ), pairs as (
        select w.id as a, e2.contact_id as b,
               jsonb_build_object('kind', 'email', 'mailbox', e1.mailbox_key) as reason
        from walked w
        join contact_emails e1 on e1.tenant_id = $1 and e1.contact_id = w.id and e1.live
        join contact_emails e2 on e2.tenant_id = $1 and e2.mailbox_key = e1.mailbox_key
                              and e2.live and e2.contact_id <> w.id
        union all
        select w.id, p2.contact_id, jsonb_build_object('kind', 'phone', 'e164', p1.e164)
        from walked w
        join contact_phones p1 on p1.tenant_id = $1 and p1.contact_id = w.id
        join contact_phones p2 on p2.tenant_id = $1 and p2.e164 = p1.e164 and p2.contact_id <> w.id
        join contacts k on k.tenant_id = $1 and k.id = p2.contact_id and k.deleted_at is null
        union all
        select w.id, o.id,
               jsonb_build_object('kind', 'name_and_company', 'company', c.company,
                                  'similarity', round(similarity(lower(c.display_name),
                                                                 lower(o.display_name))::numeric, 2))
        from walked w
        join tenant_contacts c on c.id = w.id
        cross join lateral (
            select o.id, o.display_name from tenant_contacts o
            where o.company is not null and o.deleted_at is null
              and lower(o.company) = lower(c.company)
              and left(lower(coalesce(o.last_name, o.display_name)), 2)
                  = left(lower(coalesce(c.last_name, c.display_name)), 2)
              and o.id <> c.id
              and ($5::uuid is not null or o.id > c.id)
            order by o.id
            limit 50
        ) o
        where c.company is not null
          and similarity(lower(c.display_name), lower(o.display_name)) >= 0.5
    ), found as (
        select least(a, b) as a, greatest(a, b) as b, jsonb_agg(distinct reason) as reasons
        from pairs
        where $5::uuid is not null or b > a
        group by 1, 2
    ), page as (
        select a, b, reasons from found
        where $2::uuid is null or (a, b) > ($2::uuid, $3::uuid)
        order by a, b
        limit $6
    ), people as (
        select c.id, c.display_name, c.company,
               (select e.address from contact_emails e
                where e.tenant_id = $1 and e.contact_id = c.id
                order by e.is_primary desc, e.position limit 1) as email
        from contacts c
        where c.tenant_id = $1 and c.id in (select a from page union select b from page)
    )
    select (select count(*) from walked)::int8 as walked,
           (select id from walked order by id desc limit 1) as last_walked,
           coalesce((select jsonb_agg(jsonb_build_object('a', a, 'b', b, 'reasons', reasons)
                                      order by a, b) from page), '[]') as pairs,
           coalesce((select jsonb_agg(jsonb_build_object('id', id, 'display_name', display_name,
                                                         'company', company, 'email', email))
                     from people), '[]') as contacts";

/// A pair as the statement finds it.
#[derive(Debug, serde::Deserialize)]
pub struct FoundPair {
    pub a: ContactId,
    pub b: ContactId,
    pub reasons: Vec<Reason>,
}

/// What one walk found.
#[derive(Debug)]
pub struct Walk {
    /// How many contacts it walked, and the last of them.
    pub walked: i64,
    pub last_walked: Option<ContactId>,
    pub pairs: Vec<FoundPair>,
    pub contacts: Vec<CandidateContact>,
}

/// Pairs after `after`, walking at most `budget` contacts (or only `contact`'s), at most `limit`.
pub async fn page(
    tx: &Tx,
    tenant: TenantId,
    after: Option<(ContactId, ContactId)>,
    budget: i64,
    contact: Option<ContactId>,
    limit: i64,
) -> Result<Walk, DbError> {
    let row = tx
        .query_one(
            PAGE,
            &[
                tenant.into(),
                after.map(|(a, _)| a).into(),
                after.map(|(_, b)| b).into(),
                SqlValue::Int(budget),
                contact.into(),
                SqlValue::Int(limit),
            ],
        )
        .await?;
    Ok(Walk {
        walked: row.get("walked")?,
        last_walked: row.get("last_walked")?,
        pairs: row.json("pairs")?,
        contacts: row.json("contacts")?,
    })
}
