//! The database layer: tenant-scoped transactions, portable values and rows, error mapping.
//!
//! Every statement runs inside [`Db::transaction`], which opens a transaction, sets `app.tenant_id`
//! for row-level security, and commits on `Ok` or rolls back on `Err`: no error path can leave a
//! transaction open on a pooled connection. Timestamps cross this boundary as RFC 3339 text (SQL
//! formats them with `rfc3339(...)` and parses them with `$n::text::timestamptz`), which reads the
//! same on Spin's pg host and on tokio-postgres.

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(target_arch = "wasm32")]
mod spin;

#[cfg(not(target_arch = "wasm32"))]
use native as backend;
#[cfg(target_arch = "wasm32")]
use spin as backend;

use crate::ApiError;
use chrono::{DateTime, Utc};
use crm_domain::{
    AuditRecordId, CallId, ConsentId, ContactId, CustomFieldId, DeliveryId, EventId, ExportId,
    ImportId, ListId, MergeId, NoteId, RelationshipId, TagId, TenantId, WebhookId,
};
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

/// A statement parameter or a column value.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Bool(bool),
    Int(i64),
    Text(String),
    Uuid(Uuid),
    Json(Value),
    Bytes(Vec<u8>),
    TextArray(Vec<String>),
}

impl From<&str> for SqlValue {
    fn from(value: &str) -> Self {
        SqlValue::Text(value.to_owned())
    }
}
impl From<String> for SqlValue {
    fn from(value: String) -> Self {
        SqlValue::Text(value)
    }
}
impl From<i64> for SqlValue {
    fn from(value: i64) -> Self {
        SqlValue::Int(value)
    }
}
impl From<bool> for SqlValue {
    fn from(value: bool) -> Self {
        SqlValue::Bool(value)
    }
}
impl From<Uuid> for SqlValue {
    fn from(value: Uuid) -> Self {
        SqlValue::Uuid(value)
    }
}
/// Every entity id is a `uuid` parameter and reads back from a `uuid` column.
macro_rules! id_columns {
    ($($id:ty),*) => {$(
        impl From<$id> for SqlValue {
            fn from(value: $id) -> Self {
                SqlValue::Uuid(value.as_uuid())
            }
        }

        impl FromSql for $id {
            fn from_sql(value: &SqlValue) -> Option<Self> {
                Uuid::from_sql(value).map(<$id>::from_uuid)
            }
        }
    )*};
}
id_columns!(
    TenantId,
    ContactId,
    MergeId,
    ImportId,
    ExportId,
    CallId,
    NoteId,
    TagId,
    ListId,
    ConsentId,
    CustomFieldId,
    RelationshipId,
    WebhookId,
    DeliveryId,
    EventId,
    AuditRecordId
);
impl SqlValue {
    /// Ids as one text array parameter, which a statement reads as `$n::text[]::uuid[]`.
    pub fn id_array<T: std::fmt::Display>(ids: impl IntoIterator<Item = T>) -> Self {
        SqlValue::TextArray(ids.into_iter().map(|id| id.to_string()).collect())
    }
}
impl From<Value> for SqlValue {
    fn from(value: Value) -> Self {
        SqlValue::Json(value)
    }
}
impl From<Vec<u8>> for SqlValue {
    fn from(value: Vec<u8>) -> Self {
        SqlValue::Bytes(value)
    }
}
impl From<Vec<String>> for SqlValue {
    fn from(value: Vec<String>) -> Self {
        SqlValue::TextArray(value)
    }
}
impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(value: Option<T>) -> Self {
        value.map_or(SqlValue::Null, Into::into)
    }
}

/// A statement assembled from optional clauses, numbering its parameters as they are added.
#[derive(Debug, Clone)]
pub struct SqlBuilder {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

impl SqlBuilder {
    /// Starts from `sql`, whose own placeholders are `params`.
    pub fn new(sql: impl Into<String>, params: Vec<SqlValue>) -> Self {
        Self {
            sql: sql.into(),
            params,
        }
    }

    /// Appends `clause`, each `?` in it standing for the next parameter of `values`, in order.
    /// (So a clause cannot use jsonb's `?` operators; write `jsonb_exists(...)` instead.)
    pub fn push(&mut self, clause: &str, values: impl IntoIterator<Item = SqlValue>) -> &mut Self {
        let mut values = values.into_iter();
        for (index, part) in clause.split('?').enumerate() {
            if index > 0 {
                self.params.push(values.next().unwrap_or(SqlValue::Null));
                self.sql.push_str(&format!("${}", self.params.len()));
            }
            self.sql.push_str(part);
        }
        self
    }

    /// Appends text with no parameter.
    pub fn raw(&mut self, text: &str) -> &mut Self {
        self.sql.push_str(text);
        self
    }

    /// Ends the statement with one keyset page in `order`: the rows after the cursor `after`
    /// (its sort key, when the order has one, and its id), sorted, at most `limit` of them. Every
    /// list of every repository pages this way (docs/adr/0006-keyset-cursors.md).
    pub fn page(&mut self, order: &Keyset, after: Option<Vec<SqlValue>>, limit: i64) -> &mut Self {
        let (columns, placeholders) = match order.key {
            Some((expression, placeholder)) => (
                format!("({expression}, {})", order.id),
                format!("({placeholder}, ?)"),
            ),
            None => (order.id.to_owned(), "?".to_owned()),
        };
        if let Some(cursor) = after {
            let operator = if order.descending { "<" } else { ">" };
            self.push(&format!(" and {columns} {operator} {placeholders}"), cursor);
        }
        let direction = if order.descending { "desc" } else { "asc" };
        let keys = match order.key {
            Some((expression, _)) => format!("{expression} {direction}, {} {direction}", order.id),
            None => format!("{} {direction}", order.id),
        };
        // The limit is written into the statement, not passed: a parameter's value is unknown to a
        // generic plan, which then costs the query as if it read every row, so PostgreSQL keeps
        // planning it afresh on every execution (and JIT-compiles it above `jit_above_cost`).
        // A limit is a page size the API bounds, a handful of distinct statements per query.
        self.raw(&format!(" order by {keys} limit {limit}"))
    }
}

/// The order of a keyset-paginated list: an optional sort key (its SQL expression, and the
/// placeholder that turns a cursor's text back into its type, e.g. `?::text::timestamptz`), then
/// the id that breaks ties, both in one direction.
#[derive(Debug, Clone, Copy)]
pub struct Keyset<'a> {
    pub key: Option<(&'a str, &'a str)>,
    pub id: &'a str,
    pub descending: bool,
}

impl<'a> Keyset<'a> {
    /// Newest first by a timestamp column, then by id.
    pub const fn newest_first(timestamp: &'a str, id: &'a str) -> Self {
        Self {
            key: Some((timestamp, "?::text::timestamptz")),
            id,
            descending: true,
        }
    }
}

/// One result row. Entity decoders read columns by name (the statement names each one, aliasing
/// expressions: `rfc3339(c.created_at) as created_at`); a statement that selects one value reads
/// it by position.
#[derive(Debug, Clone)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<SqlValue>,
}

/// Where a value is in a [`Row`]: its column's name, or its position.
pub trait Column: Copy + std::fmt::Display {
    fn position(self, columns: &[String]) -> Option<usize>;
}

impl Column for usize {
    fn position(self, columns: &[String]) -> Option<usize> {
        (self < columns.len()).then_some(self)
    }
}

impl Column for &str {
    fn position(self, columns: &[String]) -> Option<usize> {
        columns.iter().position(|name| name == self)
    }
}

impl Row {
    pub(crate) fn new(columns: Arc<[String]>, values: Vec<SqlValue>) -> Self {
        Self { columns, values }
    }

    /// The value of `column` (a name or a position) as `T`.
    ///
    /// # Errors
    /// `DbError::Decode` naming the column when the row has no such column or holds another type.
    pub fn get<T: FromSql>(&self, column: impl Column) -> Result<T, DbError> {
        let expected = std::any::type_name::<T>();
        let value = column
            .position(&self.columns)
            .and_then(|index| self.values.get(index))
            .ok_or_else(|| DbError::Decode {
                column: column.to_string(),
                expected,
                found: "no such column".into(),
            })?;
        T::from_sql(value).ok_or_else(|| DbError::Decode {
            column: column.to_string(),
            found: format!("{value:?}").chars().take(40).collect(),
            expected,
        })
    }

    /// The JSON column `name` read as `T` (a document the statement built: a list, a record).
    ///
    /// # Errors
    /// `DbError::Decode` naming the column when it is not JSON of `T`'s shape.
    pub fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, DbError> {
        serde_json::from_value(self.get::<Value>(name)?).map_err(|e| DbError::Decode {
            column: name.to_owned(),
            expected: std::any::type_name::<T>(),
            found: e.to_string(),
        })
    }
}

/// Conversion from a column value.
pub trait FromSql: Sized {
    fn from_sql(value: &SqlValue) -> Option<Self>;
}

impl<T: FromSql> FromSql for Option<T> {
    fn from_sql(value: &SqlValue) -> Option<Self> {
        match value {
            SqlValue::Null => Some(None),
            other => T::from_sql(other).map(Some),
        }
    }
}
impl FromSql for String {
    fn from_sql(value: &SqlValue) -> Option<Self> {
        match value {
            SqlValue::Text(text) => Some(text.clone()),
            _ => None,
        }
    }
}
impl FromSql for i64 {
    fn from_sql(value: &SqlValue) -> Option<Self> {
        match value {
            SqlValue::Int(n) => Some(*n),
            _ => None,
        }
    }
}
impl FromSql for bool {
    fn from_sql(value: &SqlValue) -> Option<Self> {
        match value {
            SqlValue::Bool(b) => Some(*b),
            _ => None,
        }
    }
}
impl FromSql for Uuid {
    fn from_sql(value: &SqlValue) -> Option<Self> {
        match value {
            SqlValue::Uuid(uuid) => Some(*uuid),
            _ => None,
        }
    }
}
impl FromSql for Value {
    fn from_sql(value: &SqlValue) -> Option<Self> {
        match value {
            SqlValue::Json(json) => Some(json.clone()),
            _ => None,
        }
    }
}
impl FromSql for Vec<u8> {
    fn from_sql(value: &SqlValue) -> Option<Self> {
        match value {
            SqlValue::Bytes(bytes) => Some(bytes.clone()),
            _ => None,
        }
    }
}
impl FromSql for Vec<String> {
    fn from_sql(value: &SqlValue) -> Option<Self> {
        match value {
            SqlValue::TextArray(items) => Some(items.clone()),
            _ => None,
        }
    }
}
/// Timestamps are selected as `rfc3339(column)` text.
impl FromSql for DateTime<Utc> {
    fn from_sql(value: &SqlValue) -> Option<Self> {
        match value {
            SqlValue::Text(text) => DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            _ => None,
        }
    }
}

/// What went wrong in the database, in terms the HTTP layer can map.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    /// A constraint rejected the statement; `constraint` is its name.
    #[error("{kind:?} constraint {constraint} violated")]
    Constraint {
        kind: ConstraintKind,
        constraint: String,
    },
    /// The database could not be reached.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Query(String),
    /// A call that sets the tenant itself ran on a connection still inside a transaction left open
    /// by an earlier user (SQLSTATE `CR001`): roll that back and call again.
    #[error("the connection was inside a transaction left open")]
    LeftoverTransaction,
    #[error("column {column}: expected {expected}, found {found}")]
    Decode {
        column: String,
        expected: &'static str,
        found: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    Unique,
    ForeignKey,
    Check,
    NotNull,
}

impl DbError {
    /// Classifies a PostgreSQL error by SQLSTATE; `constraint` falls back to the name quoted in
    /// the message, which every backend carries.
    pub(crate) fn from_sqlstate(code: &str, constraint: Option<String>, message: &str) -> Self {
        let kind = match code {
            "23505" => Some(ConstraintKind::Unique),
            "23503" => Some(ConstraintKind::ForeignKey),
            "23514" => Some(ConstraintKind::Check),
            "23502" => Some(ConstraintKind::NotNull),
            _ => None,
        };
        let quoted = || message.split('"').nth(1).map(str::to_owned);
        match kind {
            Some(kind) => DbError::Constraint {
                kind,
                constraint: constraint.or_else(quoted).unwrap_or_default(),
            },
            // Class 08: connection exceptions; 57P0x: the server is shutting down or starting.
            None if code.starts_with("08") || code.starts_with("57P0") => {
                DbError::Unavailable(message.to_owned())
            }
            None if code == "CR001" => DbError::LeftoverTransaction,
            None => DbError::Query(format!("{code}: {message}")),
        }
    }

    pub fn constraint(&self) -> Option<&str> {
        match self {
            DbError::Constraint { constraint, .. } => Some(constraint),
            _ => None,
        }
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable(_) => ApiError::Unavailable(error.into()),
            other => ApiError::Internal(other.into()),
        }
    }
}

/// Maps the violation of the constraint `name` to `to_error`; any other database error keeps its
/// usual mapping. The one place constraint names become HTTP answers:
/// `.map_err(on_constraint("contact_emails_live_address_key", || ApiError::Conflict { .. }))`.
pub fn on_constraint(
    name: &'static str,
    to_error: impl FnOnce() -> ApiError,
) -> impl FnOnce(DbError) -> ApiError {
    move |error| match error.constraint() {
        Some(constraint) if constraint == name => to_error(),
        _ => ApiError::from(error),
    }
}

/// The application's database: a pool natively, the Spin host's pooled connections on wasm32.
#[derive(Clone)]
pub struct Db {
    pool: backend::Pool,
    readiness: Arc<Readiness>,
}

/// The last readiness check and when it ran (Unix milliseconds): probes within
/// [`READINESS_TTL_MS`] of it share its answer, and only one probe at a time asks the database.
type Readiness = futures::lock::Mutex<Option<(i64, Result<(), DbError>)>>;

/// How long a readiness answer is reused.
const READINESS_TTL_MS: i64 = 1_000;

impl Db {
    /// # Errors
    /// When the URL cannot be parsed (natively). No connection is made until the first request.
    pub fn connect(url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            pool: backend::Pool::new(url)?,
            readiness: Arc::default(),
        })
    }

    /// Runs `work` in one transaction for `tenant`: committed when it returns `Ok`, rolled back
    /// when it returns `Err` (or when the commit itself fails).
    pub async fn transaction<T, E>(
        &self,
        tenant: TenantId,
        work: impl AsyncFnOnce(&Tx) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<DbError>,
    {
        self.run(Some(tenant), work).await
    }

    /// Runs the reads of `work` for `tenant` outside a transaction: one round trip sets the tenant
    /// for row-level security, none is spent on `begin` or `commit`, and each statement sees what
    /// was committed when it started. For reads only: a write would commit on its own.
    pub async fn read<T, E>(
        &self,
        tenant: TenantId,
        work: impl AsyncFnOnce(&Tx) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<DbError>,
    {
        let connection = Tx(self.pool.session(tenant).await?);
        let outcome = work(&connection).await;
        connection.0.release();
        outcome
    }

    /// Runs `sql`, one call to a function of the schema that sets the tenant for row-level security
    /// itself before it reads (`contact_by_id`), on a connection of its own outside any
    /// transaction: one statement, where [`Db::read`] spends one on the tenant setting first. For
    /// the hottest single-statement reads. A connection still inside a transaction left open by an
    /// earlier user (the function refuses those) has it rolled back, and the call runs again.
    pub async fn call(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, DbError> {
        self.pool.call(sql, params).await
    }

    /// Runs `work` in one transaction bound to no tenant: row-level security then shows it no
    /// tenant's rows, so it can only call the security-definer functions made for cross-tenant work
    /// (the webhook dispatcher's fan-out, claim and attempt records).
    pub async fn unscoped_transaction<T, E>(
        &self,
        work: impl AsyncFnOnce(&Tx) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<DbError>,
    {
        self.run(None, work).await
    }

    async fn run<T, E>(
        &self,
        tenant: Option<TenantId>,
        work: impl AsyncFnOnce(&Tx) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<DbError>,
    {
        let tx = Tx(self.pool.begin(tenant).await?);
        match work(&tx).await {
            Ok(value) => {
                tx.0.commit().await?;
                Ok(value)
            }
            Err(error) => {
                tx.0.rollback().await;
                Err(error)
            }
        }
    }

    /// How many connections this process holds at most (natively; the Spin host pools its own).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn max_connections(&self) -> usize {
        self.pool.max_size()
    }

    /// Checks that the database answers. Runs no migration and touches no table.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.pool.ping().await
    }

    /// Whether the database answers, for `/readyz`: however many probes arrive at once, at most one
    /// holds a connection, and an answer is reused for a second, so probes cannot exhaust the pool
    /// that requests need.
    pub async fn ready(&self) -> Result<(), DbError> {
        let mut last = self.readiness.lock().await;
        let now = chrono::Utc::now().timestamp_millis();
        if let Some((checked, answer)) = last.as_ref() {
            if (0..READINESS_TTL_MS).contains(&(now - checked)) {
                return answer.clone();
            }
        }
        let answer = self.ping().await;
        *last = Some((chrono::Utc::now().timestamp_millis(), answer.clone()));
        answer
    }
}

/// A connection of one request: inside a transaction ([`Db::transaction`]) or reading outside one
/// ([`Db::read`]), its tenant set either way.
pub struct Tx(backend::Connection);

impl Tx {
    pub async fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, DbError> {
        self.0.query(sql, params).await
    }

    pub async fn query_opt(&self, sql: &str, params: &[SqlValue]) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    pub async fn query_one(&self, sql: &str, params: &[SqlValue]) -> Result<Row, DbError> {
        self.query_opt(sql, params)
            .await?
            .ok_or_else(|| DbError::Query("the statement returned no row".into()))
    }

    pub async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<u64, DbError> {
        self.0.execute(sql, params).await
    }

    /// Runs `work` in a savepoint of this transaction: when it fails, what it wrote is undone and
    /// the transaction goes on (one operation of a batch). The outer error is the savepoint's own.
    pub async fn savepoint<T, E>(
        &self,
        work: impl AsyncFnOnce() -> Result<T, E>,
    ) -> Result<Result<T, E>, DbError> {
        self.execute("savepoint operation", &[]).await?;
        let outcome = work().await;
        let end = match outcome {
            Ok(_) => "release savepoint operation",
            Err(_) => "rollback to savepoint operation",
        };
        self.execute(end, &[]).await?;
        Ok(outcome)
    }

    /// Runs `work` in a savepoint that is always rolled back: what it would write, and nothing
    /// written (a dry run).
    pub async fn trial<T, E>(
        &self,
        work: impl AsyncFnOnce() -> Result<T, E>,
    ) -> Result<Result<T, E>, DbError> {
        self.execute("savepoint trial", &[]).await?;
        let outcome = work().await;
        self.execute("rollback to savepoint trial", &[]).await?;
        self.execute("release savepoint trial", &[]).await?;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_constraint_violations_and_finds_their_names() {
        let error = DbError::from_sqlstate(
            "23505",
            None,
            "duplicate key value violates unique constraint \"contact_emails_live_address_key\"",
        );
        assert_eq!(error.constraint(), Some("contact_emails_live_address_key"));
        assert!(matches!(
            DbError::from_sqlstate("08006", None, "gone"),
            DbError::Unavailable(_)
        ));
    }

    #[test]
    fn on_constraint_maps_only_the_named_constraint() {
        let conflict = || ApiError::bad_request("dup");
        let named = DbError::Constraint {
            kind: ConstraintKind::Unique,
            constraint: "a_key".into(),
        };
        assert!(matches!(
            on_constraint("a_key", conflict)(named),
            ApiError::BadRequest { .. }
        ));
        let other = DbError::Constraint {
            kind: ConstraintKind::Unique,
            constraint: "b_key".into(),
        };
        assert!(matches!(
            on_constraint("a_key", conflict)(other),
            ApiError::Internal(_)
        ));
    }

    #[test]
    fn the_builder_numbers_parameters_in_order() {
        let mut query = SqlBuilder::new("select 1 where a = $1", vec![SqlValue::Int(1)]);
        query
            .push(" and b = ?", [SqlValue::Int(2)])
            .push(" and (c, d) < (?, ?)", [SqlValue::Int(3), SqlValue::Int(4)]);
        assert_eq!(
            query.sql,
            "select 1 where a = $1 and b = $2 and (c, d) < ($3, $4)"
        );
        assert_eq!(query.params.len(), 4);
    }

    #[test]
    fn a_keyset_page_continues_after_its_cursor_in_its_order() {
        let order = Keyset::newest_first("c.started_at", "c.id");
        let mut query = SqlBuilder::new(
            "select 1 from calls c where c.tenant_id = $1",
            vec![SqlValue::Null],
        );
        query.page(&order, Some(vec!["t".into(), SqlValue::Int(7)]), 51);
        assert_eq!(
            query.sql,
            "select 1 from calls c where c.tenant_id = $1 \
             and (c.started_at, c.id) < ($2::text::timestamptz, $3) \
             order by c.started_at desc, c.id desc limit 51"
        );
        assert_eq!(query.params.len(), 3, "the limit is written, not passed");
        let ids = Keyset {
            key: None,
            id: "s.id",
            descending: false,
        };
        let mut first = SqlBuilder::new("select 1 from s", vec![]);
        first.page(&ids, None, 10);
        assert_eq!(first.sql, "select 1 from s order by s.id asc limit 10");
    }

    #[test]
    fn rows_report_the_column_at_fault() {
        let row = Row::new(
            Arc::from(vec!["version".to_owned()]),
            vec![SqlValue::Text("x".into())],
        );
        let error = row.get::<i64>("version").unwrap_err().to_string();
        assert!(error.contains("version"), "{error}");
        let missing = row.get::<i64>("versoin").unwrap_err().to_string();
        assert!(
            missing.contains("versoin") && missing.contains("no such column"),
            "{missing}"
        );
    }
}
