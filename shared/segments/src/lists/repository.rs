//! List storage. SQL lives here as constants; rows decode into domain types.

use crm_domain::list::{ContactList, ListKind, NewList};
use crm_domain::{ContactId, ListId, TenantId};
use crm_platform::store::db::{DbError, Keyset, Row, SqlBuilder, SqlValue, Tx};
use serde_json::Value;

/// The unique index that refuses a second list with the same name, whatever its case.
pub const NAME_TAKEN: &str = "lists_name_key";

const COLUMNS: &str = "l.id, l.name, l.description, l.kind, l.filter, l.version,
    case when l.kind = 'static' then
        (select count(*) from list_members m
         join contacts c on c.tenant_id = m.tenant_id and c.id = m.contact_id and c.deleted_at is null
         where m.tenant_id = l.tenant_id and m.list_id = l.id)::int8
    end as member_count,
    rfc3339(l.created_at) as created_at, rfc3339(l.updated_at) as updated_at,
    lower(l.name) as sort_key";

const INSERT: &str = "
    insert into lists as l (tenant_id, id, name, description, kind, filter)
    values ($1, $2, $3, $4, $5, $6)
    returning {columns}";
const UPDATE: &str = "
    update lists as l set name = $3, description = $4, filter = $5, version = version + 1
    where tenant_id = $1 and id = $2
    returning {columns}";
const FIND: &str = "select {columns} from lists l where l.tenant_id = $1 and l.id = $2";
const FIND_FOR_UPDATE: &str =
    "select {columns} from lists l where l.tenant_id = $1 and l.id = $2 for no key update";
const DELETE: &str = "delete from lists where tenant_id = $1 and id = $2";
/// Which of the ids are live contacts of the tenant, held so that none is erased before its
/// membership is written.
const LIVE_CONTACTS: &str = "
    select id from contacts
    where tenant_id = $1 and id = any($2::text[]::uuid[]) and deleted_at is null
    for key share";
const ADD: &str = "
    insert into list_members (tenant_id, list_id, contact_id)
    select $1, $2, unnest($3::text[]::uuid[])
    on conflict do nothing
    returning contact_id";
const REMOVE: &str = "
    delete from list_members
    where tenant_id = $1 and list_id = $2 and contact_id = any($3::text[]::uuid[])
    returning contact_id";

fn sql(template: &str) -> String {
    template.replace("{columns}", COLUMNS)
}

pub async fn insert(tx: &Tx, tenant: TenantId, list: &NewList) -> Result<ContactList, DbError> {
    let row = tx
        .query_one(
            &sql(INSERT),
            &[
                tenant.into(),
                ListId::generate().into(),
                list.name.as_str().into(),
                list.description.clone().into(),
                list.kind.as_str().into(),
                filter_value(list),
            ],
        )
        .await?;
    list_from_row(&row)
}

pub async fn update(
    tx: &Tx,
    tenant: TenantId,
    id: ListId,
    list: &NewList,
) -> Result<ContactList, DbError> {
    let row = tx
        .query_one(
            &sql(UPDATE),
            &[
                tenant.into(),
                id.into(),
                list.name.as_str().into(),
                list.description.clone().into(),
                filter_value(list),
            ],
        )
        .await?;
    list_from_row(&row)
}

pub async fn find(
    tx: &Tx,
    tenant: TenantId,
    id: ListId,
    lock: bool,
) -> Result<Option<ContactList>, DbError> {
    let statement = sql(if lock { FIND_FOR_UPDATE } else { FIND });
    tx.query_opt(&statement, &[tenant.into(), id.into()])
        .await?
        .map(|row| list_from_row(&row))
        .transpose()
}

pub async fn delete(tx: &Tx, tenant: TenantId, id: ListId) -> Result<(), DbError> {
    tx.execute(DELETE, &[tenant.into(), id.into()])
        .await
        .map(|_| ())
}

/// The tenant's lists by name (case-insensitively), after `(name key, id)`, of `kind` if given.
pub async fn list(
    tx: &Tx,
    tenant: TenantId,
    kind: Option<ListKind>,
    after: Option<&(String, ListId)>,
    limit: i64,
) -> Result<Vec<(ContactList, String)>, DbError> {
    let mut query = SqlBuilder::new(
        sql("select {columns} from lists l where l.tenant_id = $1"),
        vec![tenant.into()],
    );
    if let Some(kind) = kind {
        query.push(" and l.kind = ?", [kind.as_str().into()]);
    }
    query.page(
        &Keyset {
            key: Some(("lower(l.name)", "?")),
            id: "l.id",
            descending: false,
        },
        after.map(|(key, id)| vec![key.as_str().into(), (*id).into()]),
        limit,
    );
    tx.query(&query.sql, &query.params)
        .await?
        .iter()
        .map(|row| Ok((list_from_row(row)?, row.get("sort_key")?)))
        .collect()
}

/// Which of `ids` are live contacts of the tenant, each held until the transaction ends.
pub async fn live_contacts(
    tx: &Tx,
    tenant: TenantId,
    ids: &[ContactId],
) -> Result<Vec<ContactId>, DbError> {
    ids_of(tx, LIVE_CONTACTS, &[tenant.into(), SqlValue::id_array(ids)]).await
}

/// Adds `contacts` to the list; answers those that were not members yet.
pub async fn add(
    tx: &Tx,
    tenant: TenantId,
    list: ListId,
    contacts: &[ContactId],
) -> Result<Vec<ContactId>, DbError> {
    ids_of(
        tx,
        ADD,
        &[tenant.into(), list.into(), SqlValue::id_array(contacts)],
    )
    .await
}

/// Removes `contacts` from the list; answers those that were members.
pub async fn remove(
    tx: &Tx,
    tenant: TenantId,
    list: ListId,
    contacts: &[ContactId],
) -> Result<Vec<ContactId>, DbError> {
    ids_of(
        tx,
        REMOVE,
        &[tenant.into(), list.into(), SqlValue::id_array(contacts)],
    )
    .await
}

async fn ids_of(tx: &Tx, statement: &str, params: &[SqlValue]) -> Result<Vec<ContactId>, DbError> {
    tx.query(statement, params)
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect()
}

fn filter_value(list: &NewList) -> SqlValue {
    list.filter.clone().map_or(SqlValue::Null, |filter| {
        SqlValue::Json(Value::Object(filter))
    })
}

fn list_from_row(row: &Row) -> Result<ContactList, DbError> {
    let kind: String = row.get("kind")?;
    let filter: Option<Value> = row.get("filter")?;
    Ok(ContactList {
        id: row.get("id")?,
        name: row.get("name")?,
        description: row.get("description")?,
        kind: ListKind::parse(&kind).unwrap_or(ListKind::Static),
        filter: match filter {
            Some(Value::Object(filter)) => Some(filter),
            _ => None,
        },
        member_count: row.get("member_count")?,
        version: row.get("version")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}
