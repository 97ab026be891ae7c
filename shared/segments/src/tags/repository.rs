//! Tag storage. SQL lives here as constants; rows decode into domain types.

use crm_domain::tag::{AttachedTag, NewTag, Tag};
use crm_domain::{ContactId, TagId, TenantId};
use crm_platform::store::db::{DbError, Keyset, Row, SqlBuilder, SqlValue, Tx};

/// The unique index that refuses a second tag with the same name, whatever its case.
pub const NAME_TAKEN: &str = "tags_name_key";
/// The foreign key that refuses a tag the tenant does not have.
pub const UNKNOWN_TAG: &str = "contact_tags_tenant_id_tag_id_fkey";

const COLUMNS: &str = "t.id, t.name, t.colour, t.description, t.version,
    (select count(*) from contact_tags ct where ct.tenant_id = t.tenant_id and ct.tag_id = t.id)::int8
        as contact_count,
    rfc3339(t.created_at) as created_at, rfc3339(t.updated_at) as updated_at,
    lower(t.name) as sort_key";

const INSERT: &str = "
    insert into tags as t (tenant_id, id, name, colour, description) values ($1, $2, $3, $4, $5)
    returning {columns}";
const UPDATE: &str = "
    update tags as t set name = $3, colour = $4, description = $5, version = version + 1
    where tenant_id = $1 and id = $2
    returning {columns}";
const FIND: &str = "select {columns} from tags t where t.tenant_id = $1 and t.id = $2";
const FIND_FOR_UPDATE: &str =
    "select {columns} from tags t where t.tenant_id = $1 and t.id = $2 for update";
const DELETE: &str = "delete from tags where tenant_id = $1 and id = $2";
const NAMED: &str =
    "select {columns} from tags t where t.tenant_id = $1 and lower(t.name) = any($2::text[])";
const KNOWN: &str = "select id from tags where tenant_id = $1 and id = any($2::text[]::uuid[])";

const ATTACHED: &str = "
    select t.id, t.name, t.colour from contact_tags ct
    join tags t on t.tenant_id = ct.tenant_id and t.id = ct.tag_id
    where ct.tenant_id = $1 and ct.contact_id = $2
    order by lower(t.name), t.id";
const ATTACH: &str = "
    insert into contact_tags (tenant_id, contact_id, tag_id) values ($1, $2, $3)
    on conflict do nothing";
const DETACH: &str =
    "delete from contact_tags where tenant_id = $1 and contact_id = $2 and tag_id = $3";
const DETACH_OTHERS: &str = "
    delete from contact_tags where tenant_id = $1 and contact_id = $2 and tag_id <> all($3::text[]::uuid[])";
const ATTACH_ALL: &str = "
    insert into contact_tags (tenant_id, contact_id, tag_id)
    select $1, $2, unnest($3::text[]::uuid[])
    on conflict do nothing";
fn sql(template: &str) -> String {
    template.replace("{columns}", COLUMNS)
}

pub async fn insert(tx: &Tx, tenant: TenantId, tag: &NewTag) -> Result<Tag, DbError> {
    let row = tx
        .query_one(
            &sql(INSERT),
            &[
                tenant.into(),
                TagId::generate().into(),
                tag.name.as_str().into(),
                tag.colour.clone().into(),
                tag.description.clone().into(),
            ],
        )
        .await?;
    tag_from_row(&row)
}

pub async fn update(tx: &Tx, tenant: TenantId, id: TagId, tag: &NewTag) -> Result<Tag, DbError> {
    let row = tx
        .query_one(
            &sql(UPDATE),
            &[
                tenant.into(),
                id.into(),
                tag.name.as_str().into(),
                tag.colour.clone().into(),
                tag.description.clone().into(),
            ],
        )
        .await?;
    tag_from_row(&row)
}

pub async fn find(
    tx: &Tx,
    tenant: TenantId,
    id: TagId,
    lock: bool,
) -> Result<Option<Tag>, DbError> {
    let statement = sql(if lock { FIND_FOR_UPDATE } else { FIND });
    tx.query_opt(&statement, &[tenant.into(), id.into()])
        .await?
        .map(|row| tag_from_row(&row))
        .transpose()
}

pub async fn delete(tx: &Tx, tenant: TenantId, id: TagId) -> Result<(), DbError> {
    tx.execute(DELETE, &[tenant.into(), id.into()])
        .await
        .map(|_| ())
}

/// The tenant's tags by name (case-insensitively), after `(name key, id)`.
pub async fn list(
    tx: &Tx,
    tenant: TenantId,
    after: Option<&(String, TagId)>,
    limit: i64,
) -> Result<Vec<(Tag, String)>, DbError> {
    let mut query = SqlBuilder::new(
        sql("select {columns} from tags t where t.tenant_id = $1"),
        vec![tenant.into()],
    );
    query.page(
        &Keyset {
            key: Some(("lower(t.name)", "?")),
            id: "t.id",
            descending: false,
        },
        after.map(|(key, id)| vec![key.as_str().into(), (*id).into()]),
        limit,
    );
    tx.query(&query.sql, &query.params)
        .await?
        .iter()
        .map(|row| Ok((tag_from_row(row)?, row.get("sort_key")?)))
        .collect()
}

/// The tenant's tags whose names are among `names` (compared without case).
pub async fn named(tx: &Tx, tenant: TenantId, names: &[String]) -> Result<Vec<Tag>, DbError> {
    let keys = names.iter().map(|name| name.to_lowercase()).collect();
    tx.query(&sql(NAMED), &[tenant.into(), SqlValue::TextArray(keys)])
        .await?
        .iter()
        .map(tag_from_row)
        .collect()
}

/// Which of `ids` the tenant has.
pub async fn known(tx: &Tx, tenant: TenantId, ids: &[TagId]) -> Result<Vec<TagId>, DbError> {
    tx.query(KNOWN, &[tenant.into(), SqlValue::id_array(ids)])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// The contact's tags by name.
pub async fn attached(
    tx: &Tx,
    tenant: TenantId,
    contact: ContactId,
) -> Result<Vec<AttachedTag>, DbError> {
    tx.query(ATTACHED, &[tenant.into(), contact.into()])
        .await?
        .iter()
        .map(|row| {
            Ok(AttachedTag {
                id: row.get("id")?,
                name: row.get("name")?,
                colour: row.get("colour")?,
            })
        })
        .collect()
}

pub async fn attach(
    tx: &Tx,
    tenant: TenantId,
    contact: ContactId,
    tag: TagId,
) -> Result<(), DbError> {
    tx.execute(ATTACH, &[tenant.into(), contact.into(), tag.into()])
        .await
        .map(|_| ())
}

pub async fn detach(
    tx: &Tx,
    tenant: TenantId,
    contact: ContactId,
    tag: TagId,
) -> Result<(), DbError> {
    tx.execute(DETACH, &[tenant.into(), contact.into(), tag.into()])
        .await
        .map(|_| ())
}

/// Makes `tags` exactly the contact's set.
pub async fn replace(
    tx: &Tx,
    tenant: TenantId,
    contact: ContactId,
    tags: &[TagId],
) -> Result<(), DbError> {
    let params = [tenant.into(), contact.into(), SqlValue::id_array(tags)];
    tx.execute(DETACH_OTHERS, &params).await?;
    tx.execute(ATTACH_ALL, &params).await.map(|_| ())
}

fn tag_from_row(row: &Row) -> Result<Tag, DbError> {
    Ok(Tag {
        id: row.get("id")?,
        name: row.get("name")?,
        colour: row.get("colour")?,
        description: row.get("description")?,
        contact_count: row.get("contact_count")?,
        version: row.get("version")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}
