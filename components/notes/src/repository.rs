//! Note storage. SQL lives here as constants; rows decode into domain types.

use crm_domain::note::{Author, NewNote, Note};
use crm_domain::{Actor, ContactId, NoteId, TenantId};
use crm_platform::http::pagination::CursorTime;
use crm_platform::store::db::{DbError, Row, SqlValue, Tx};

const COLUMNS: &str = "n.id, n.contact_id, n.body, n.pinned, n.author_type, n.author_id, n.version,
    rfc3339(n.created_at) as created_at, rfc3339(n.updated_at) as updated_at";

const INSERT: &str = "
    insert into contact_notes as n (tenant_id, id, contact_id, body, pinned, author_type, author_id)
    values ($1, $2, $3, $4, $5, $6, $7)
    returning {columns}";
const UPDATE: &str = "
    update contact_notes as n set body = $4, pinned = $5, version = version + 1
    where tenant_id = $1 and contact_id = $2 and id = $3
    returning {columns}";
const FIND: &str =
    "select {columns} from contact_notes n where n.tenant_id = $1 and n.contact_id = $2 and n.id = $3";
const FIND_FOR_UPDATE: &str = "select {columns} from contact_notes n
    where n.tenant_id = $1 and n.contact_id = $2 and n.id = $3 for update";
const DELETE: &str =
    "delete from contact_notes where tenant_id = $1 and contact_id = $2 and id = $3";
/// Pinned first, newest first, after the cursor `(pinned, created_at, id)` when there is one.
const LIST: &str = "
    select {columns} from contact_notes n
    where n.tenant_id = $1 and n.contact_id = $2
      and ($3::bool is null
           or (n.pinned::int4, n.created_at, n.id) < ($3::bool::int4, $4::text::timestamptz, $5::uuid))
    order by n.pinned desc, n.created_at desc, n.id desc
    limit $6";
fn sql(template: &str) -> String {
    template.replace("{columns}", COLUMNS)
}

pub async fn insert(
    tx: &Tx,
    tenant: TenantId,
    contact: ContactId,
    note: &NewNote,
    author: &Actor,
) -> Result<Note, DbError> {
    let row = tx
        .query_one(
            &sql(INSERT),
            &[
                tenant.into(),
                NoteId::generate().into(),
                contact.into(),
                note.body.as_str().into(),
                note.pinned.into(),
                author.kind().into(),
                author.id().into(),
            ],
        )
        .await?;
    note_from_row(&row)
}

pub async fn update(
    tx: &Tx,
    tenant: TenantId,
    contact: ContactId,
    id: NoteId,
    note: &NewNote,
) -> Result<Note, DbError> {
    let row = tx
        .query_one(
            &sql(UPDATE),
            &[
                tenant.into(),
                contact.into(),
                id.into(),
                note.body.as_str().into(),
                note.pinned.into(),
            ],
        )
        .await?;
    note_from_row(&row)
}

pub async fn find(
    tx: &Tx,
    tenant: TenantId,
    contact: ContactId,
    id: NoteId,
    lock: bool,
) -> Result<Option<Note>, DbError> {
    let statement = sql(if lock { FIND_FOR_UPDATE } else { FIND });
    tx.query_opt(&statement, &[tenant.into(), contact.into(), id.into()])
        .await?
        .map(|row| note_from_row(&row))
        .transpose()
}

pub async fn delete(
    tx: &Tx,
    tenant: TenantId,
    contact: ContactId,
    id: NoteId,
) -> Result<(), DbError> {
    tx.execute(DELETE, &[tenant.into(), contact.into(), id.into()])
        .await
        .map(|_| ())
}

/// Where a page of notes ended: the last note's pinned flag, creation time and id.
pub type NoteCursor = (bool, CursorTime, NoteId);

/// Up to `limit` of the contact's notes, pinned first, newest first, after `after`.
pub async fn list(
    tx: &Tx,
    tenant: TenantId,
    contact: ContactId,
    after: Option<&NoteCursor>,
    limit: i64,
) -> Result<Vec<Note>, DbError> {
    let (pinned, created_at, id) = match after {
        Some((pinned, created_at, id)) => (
            SqlValue::Bool(*pinned),
            SqlValue::from(created_at.as_str()),
            SqlValue::from(*id),
        ),
        None => (SqlValue::Null, SqlValue::Null, SqlValue::Null),
    };
    tx.query(
        &sql(LIST),
        &[
            tenant.into(),
            contact.into(),
            pinned,
            created_at,
            id,
            SqlValue::Int(limit),
        ],
    )
    .await?
    .iter()
    .map(note_from_row)
    .collect()
}

fn note_from_row(row: &Row) -> Result<Note, DbError> {
    Ok(Note {
        id: row.get("id")?,
        contact_id: row.get("contact_id")?,
        body: row.get("body")?,
        pinned: row.get("pinned")?,
        author: Author {
            kind: row.get("author_type")?,
            id: row.get("author_id")?,
        },
        version: row.get("version")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}
