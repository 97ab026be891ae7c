//! Link storage. SQL lives here as constants; rows decode into domain types.

use crm_domain::relationship::{Link, NewRelationshipType, RelatedContact, RelationshipType};
use crm_domain::{ContactId, RelationshipId, TenantId};
use crm_platform::store::db::{DbError, Row, Tx};

/// The unique index that refuses a second identical link.
pub const LINKED_ALREADY: &str = "contact_relationships_once";
/// The unique index that refuses a second type with the same names.
pub const TYPE_TAKEN: &str = "relationship_types_names_key";

const TYPES: &str = "select id::text as id, forward_name, reverse_name from relationship_types
    where tenant_id = $1 order by lower(forward_name), id";
const TYPE: &str = "select id::text as id, forward_name, reverse_name from relationship_types
    where tenant_id = $1 and id::text = $2";
const INSERT_TYPE: &str = "
    insert into relationship_types (tenant_id, id, forward_name, reverse_name)
    values ($1, gen_random_uuid(), $2, $3)
    returning id::text as id, forward_name, reverse_name";
const LINK_COLUMNS: &str = "id, type, from_contact, to_contact, rfc3339(created_at) as created_at";
const INSERT: &str = "
    insert into contact_relationships (tenant_id, id, from_contact, to_contact, type)
    values ($1, $2, $3, $4, $5)
    returning {link}";
/// A link of the contact, from either side, locked for its removal.
const FIND_FOR_DELETE: &str = "
    select {link} from contact_relationships
    where tenant_id = $1 and id = $2 and (from_contact = $3 or to_contact = $3)
    for update";
const DELETE: &str = "delete from contact_relationships where tenant_id = $1 and id = $2";
const COUNT: &str = "select count(*)::int8 from contact_relationships
    where tenant_id = $1 and (from_contact = $2 or to_contact = $2)";
/// The contact's links with the other contact's name and, for a tenant type, its names, from
/// whichever side the contact is on; links to a deleted contact are not shown (they come back with
/// it).
const OF_CONTACT: &str = "
    select r.id, r.type, rfc3339(r.created_at) as created_at, r.from_contact = $2 as outgoing,
           k.id as other_id, k.display_name as other_name,
           t.forward_name, t.reverse_name
    from contact_relationships r
    join contacts k on k.tenant_id = r.tenant_id
     and k.id = case when r.from_contact = $2 then r.to_contact else r.from_contact end
    left join relationship_types t on t.tenant_id = r.tenant_id and t.id::text = r.type
    where r.tenant_id = $1 and (r.from_contact = $2 or r.to_contact = $2) and k.deleted_at is null
    order by r.created_at desc, r.id desc";
/// The live contact's display name, held (key share) so that it cannot be erased under a new link.
const LIVE_NAME: &str = "
    select display_name from contacts where tenant_id = $1 and id = $2 and deleted_at is null
    for key share";

/// The tenant's own link types.
pub async fn types(tx: &Tx, tenant: TenantId) -> Result<Vec<RelationshipType>, DbError> {
    tx.query(TYPES, &[tenant.into()])
        .await?
        .iter()
        .map(type_from_row)
        .collect()
}

/// The tenant's type `id` (a UUID as text), if it has one.
pub async fn tenant_type(
    tx: &Tx,
    tenant: TenantId,
    id: &str,
) -> Result<Option<RelationshipType>, DbError> {
    tx.query_opt(TYPE, &[tenant.into(), id.into()])
        .await?
        .map(|row| type_from_row(&row))
        .transpose()
}

pub async fn insert_type(
    tx: &Tx,
    tenant: TenantId,
    kind: &NewRelationshipType,
) -> Result<RelationshipType, DbError> {
    let row = tx
        .query_one(
            INSERT_TYPE,
            &[
                tenant.into(),
                kind.forward_name.as_str().into(),
                kind.reverse_name.as_str().into(),
            ],
        )
        .await?;
    type_from_row(&row)
}

pub async fn insert(
    tx: &Tx,
    tenant: TenantId,
    from: ContactId,
    to: ContactId,
    kind: &str,
) -> Result<Link, DbError> {
    let row = tx
        .query_one(
            &INSERT.replace("{link}", LINK_COLUMNS),
            &[
                tenant.into(),
                RelationshipId::generate().into(),
                from.into(),
                to.into(),
                kind.into(),
            ],
        )
        .await?;
    link_from_row(&row)
}

pub async fn find_for_delete(
    tx: &Tx,
    tenant: TenantId,
    id: RelationshipId,
    contact: ContactId,
) -> Result<Option<Link>, DbError> {
    tx.query_opt(
        &FIND_FOR_DELETE.replace("{link}", LINK_COLUMNS),
        &[tenant.into(), id.into(), contact.into()],
    )
    .await?
    .map(|row| link_from_row(&row))
    .transpose()
}

pub async fn delete(tx: &Tx, tenant: TenantId, id: RelationshipId) -> Result<(), DbError> {
    tx.execute(DELETE, &[tenant.into(), id.into()])
        .await
        .map(|_| ())
}

pub async fn count(tx: &Tx, tenant: TenantId, contact: ContactId) -> Result<i64, DbError> {
    tx.query_one(COUNT, &[tenant.into(), contact.into()])
        .await?
        .get(0)
}

/// One of the contact's links as stored: its id, type key, creation time, whether the contact is
/// its first contact, the other contact, and a tenant type's names (none for a built-in).
pub struct LinkOfContact {
    pub id: RelationshipId,
    pub kind: String,
    pub created_at: String,
    pub outgoing: bool,
    pub other: RelatedContact,
    pub names: Option<(String, String)>,
}

/// The display name of a live contact of the tenant, held until the transaction ends.
pub async fn live_name(
    tx: &Tx,
    tenant: TenantId,
    contact: ContactId,
) -> Result<Option<String>, DbError> {
    tx.query_opt(LIVE_NAME, &[tenant.into(), contact.into()])
        .await?
        .map(|row| row.get(0))
        .transpose()
}

pub async fn of_contact(
    tx: &Tx,
    tenant: TenantId,
    contact: ContactId,
) -> Result<Vec<LinkOfContact>, DbError> {
    tx.query(OF_CONTACT, &[tenant.into(), contact.into()])
        .await?
        .iter()
        .map(|row| {
            Ok(LinkOfContact {
                id: row.get("id")?,
                kind: row.get("type")?,
                created_at: row.get("created_at")?,
                outgoing: row.get("outgoing")?,
                other: RelatedContact {
                    id: row.get("other_id")?,
                    display_name: row.get("other_name")?,
                },
                names: match row.get::<Option<String>>("forward_name")? {
                    Some(forward) => Some((forward, row.get("reverse_name")?)),
                    None => None,
                },
            })
        })
        .collect()
}

fn type_from_row(row: &Row) -> Result<RelationshipType, DbError> {
    Ok(RelationshipType {
        id: row.get("id")?,
        forward_name: row.get("forward_name")?,
        reverse_name: row.get("reverse_name")?,
        built_in: false,
    })
}

fn link_from_row(row: &Row) -> Result<Link, DbError> {
    Ok(Link {
        id: row.get("id")?,
        kind: row.get("type")?,
        from_contact_id: row.get("from_contact")?,
        to_contact_id: row.get("to_contact")?,
        created_at: row.get("created_at")?,
    })
}
