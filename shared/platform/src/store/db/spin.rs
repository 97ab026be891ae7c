//! Spin backend: outbound PostgreSQL through `spin_sdk::pg`. The host pools connections; one
//! request's transaction keeps one `Connection` open from `begin` to commit or rollback.

use super::{DbError, Row, SqlValue};
use crm_domain::TenantId;
use spin_sdk::pg::{self, DbValue, ParameterValue, PgError, QueryError};
use std::sync::Arc;

#[derive(Clone)]
pub struct Pool {
    url: Arc<str>,
}

impl Pool {
    pub fn new(url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            url: Arc::from(url),
        })
    }

    async fn open(&self) -> Result<pg::Connection, DbError> {
        crate::metering::checkout(pg::Connection::open(self.url.as_ref()))
            .await
            .map_err(map_error)
    }

    /// A pooled connection with its session set to `tenant` (none: no tenant's rows), outside any
    /// transaction: one statement.
    ///
    /// Spin's pool does not roll back a transaction left open on a connection it recycles (by a
    /// request that trapped or was cancelled mid-transaction). The session statement says whether
    /// it ran inside such a leftover: one that wrote or locked anything has a transaction id, and
    /// any other began before this request (an implicit transaction starts with its statement). The
    /// leftover is rolled back (its writes are never committed) and the setting made again: no
    /// round trip is added unless there was something to roll back. One too young and too idle to
    /// tell apart wrote nothing; the role's `idle_in_transaction_session_timeout` ends it.
    async fn session_of(&self, tenant: Option<TenantId>) -> Result<Connection, DbError> {
        let connection = Connection(self.open().await?);
        let tenant = SqlValue::Text(tenant.map(|t| t.to_string()).unwrap_or_default());
        let leftover = connection
            .query(SESSION, std::slice::from_ref(&tenant))
            .await?;
        if leftover
            .first()
            .is_some_and(|row| row.get::<bool>(0).unwrap_or(true))
        {
            tracing::warn!("rolled back a transaction left open on a pooled connection");
            connection.execute("rollback", &[]).await?;
            connection.query(SESSION, &[tenant]).await?;
        }
        Ok(connection)
    }

    /// A connection outside any transaction, its session set to `tenant`: for reads.
    pub async fn session(&self, tenant: TenantId) -> Result<Connection, DbError> {
        self.session_of(Some(tenant)).await
    }

    /// A transaction for `tenant` (none: no tenant's rows): the session setting, then `begin`.
    pub async fn begin(&self, tenant: Option<TenantId>) -> Result<Connection, DbError> {
        let connection = self.session_of(tenant).await?;
        connection.execute("begin", &[]).await?;
        Ok(connection)
    }

    /// `sql` on a pooled connection as it comes: the call sets the tenant itself, and refuses to
    /// run inside a leftover transaction, which is then rolled back before a second try.
    pub async fn call(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, DbError> {
        let connection = Connection(self.open().await?);
        match connection.query(sql, params).await {
            Err(DbError::LeftoverTransaction) => {
                tracing::warn!("rolled back a transaction left open on a pooled connection");
                connection.execute("rollback", &[]).await?;
                connection.query(sql, params).await
            }
            other => other,
        }
    }

    pub async fn ping(&self) -> Result<(), DbError> {
        Connection(self.open().await?)
            .query("select 1", &[])
            .await
            .map(|_| ())
    }
}

/// Sets the session's tenant and says whether the statement ran inside a transaction left open.
const SESSION: &str = "select pg_current_xact_id_if_assigned() is not null \
                              or transaction_timestamp() < statement_timestamp() - interval '1 second' \
                              as leftover, \
                       set_config('app.tenant_id', $1, false)";

pub struct Connection(pg::Connection);

impl Connection {
    pub async fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, DbError> {
        let (columns, rows) = crate::metering::db(async {
            let result = self
                .0
                .query(sql, to_parameters(params))
                .await
                .map_err(map_error)?;
            let columns: Arc<[String]> = result.columns().iter().map(|c| c.name.clone()).collect();
            let rows = result.collect().await.map_err(map_error)?;
            Ok::<_, DbError>((columns, rows))
        })
        .await?;
        rows.iter()
            .map(|row| {
                let values = (0..columns.len())
                    .map(|i| decode(&row[i], &columns[i]))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Row::new(columns.clone(), values))
            })
            .collect()
    }

    pub async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<u64, DbError> {
        crate::metering::db(self.0.execute(sql, to_parameters(params)))
            .await
            .map_err(map_error)
    }

    pub async fn commit(self) -> Result<(), DbError> {
        self.execute("commit", &[]).await.map(|_| ())
    }

    /// Hands a session connection (outside any transaction) back to the host's pool.
    pub fn release(self) {}

    /// Spin's host does not roll back a transaction when it recycles a connection, so a failed
    /// rollback is logged loudly: the next request on that connection would inherit the transaction.
    pub async fn rollback(self) {
        if let Err(error) = self.execute("rollback", &[]).await {
            tracing::error!(error = %error, "rollback failed");
        }
    }
}

fn to_parameters(params: &[SqlValue]) -> Vec<ParameterValue> {
    params
        .iter()
        .map(|param| match param {
            SqlValue::Null => ParameterValue::DbNull,
            SqlValue::Bool(v) => ParameterValue::Boolean(*v),
            SqlValue::Int(v) => ParameterValue::Int64(*v),
            SqlValue::Text(v) => ParameterValue::Str(v.clone()),
            SqlValue::Uuid(v) => ParameterValue::Uuid(v.to_string()),
            SqlValue::Json(v) => ParameterValue::Jsonb(serde_json::to_vec(v).unwrap_or_default()),
            SqlValue::Bytes(v) => ParameterValue::Binary(v.clone()),
            SqlValue::TextArray(v) => {
                ParameterValue::ArrayStr(v.iter().cloned().map(Some).collect())
            }
        })
        .collect()
}

fn decode(value: &DbValue, column: &str) -> Result<SqlValue, DbError> {
    let unsupported = |found: String| DbError::Decode {
        column: column.to_owned(),
        expected:
            "bool, integer, text, uuid, json, bytea or text[] (format timestamps with rfc3339())",
        found,
    };
    Ok(match value {
        DbValue::DbNull => SqlValue::Null,
        DbValue::Boolean(v) => SqlValue::Bool(*v),
        DbValue::Int8(v) => SqlValue::Int((*v).into()),
        DbValue::Int16(v) => SqlValue::Int((*v).into()),
        DbValue::Int32(v) => SqlValue::Int((*v).into()),
        DbValue::Int64(v) => SqlValue::Int(*v),
        DbValue::Str(v) => SqlValue::Text(v.clone()),
        DbValue::Uuid(v) => {
            SqlValue::Uuid(uuid::Uuid::parse_str(v).map_err(|e| unsupported(e.to_string()))?)
        }
        DbValue::Jsonb(v) => {
            SqlValue::Json(serde_json::from_slice(v).map_err(|e| unsupported(e.to_string()))?)
        }
        DbValue::Binary(v) => SqlValue::Bytes(v.clone()),
        DbValue::ArrayStr(v) => {
            SqlValue::TextArray(v.iter().map(|s| s.clone().unwrap_or_default()).collect())
        }
        DbValue::Unsupported(_) => {
            return Err(unsupported("a type the Spin host cannot convert".into()))
        }
        other => return Err(unsupported(db_value_kind(other).into())),
    })
}

fn map_error(error: pg::Error) -> DbError {
    match error {
        pg::Error::PgError(PgError::ConnectionFailed(message)) => DbError::Unavailable(message),
        // The host reports a connection the server closed (a restart, a killed backend, a
        // failover) as text: `Error { kind: Closed, .. }` or an I/O error.
        pg::Error::PgError(PgError::QueryFailed(QueryError::Text(text)))
            if text.contains("kind: Closed") || text.contains("kind: Io") =>
        {
            DbError::Unavailable(text)
        }
        pg::Error::PgError(PgError::QueryFailed(QueryError::DbError(db))) => {
            let constraint = db
                .extras
                .iter()
                .find(|(key, _)| key == "constraint" || key == "constraint_name")
                .map(|(_, value)| value.clone());
            DbError::from_sqlstate(&db.code, constraint, &db.message)
        }
        other => DbError::Query(other.to_string()),
    }
}

/// The variant name of a value we do not decode, for the error message (`DbValue` has no `Debug`).
fn db_value_kind(value: &DbValue) -> &'static str {
    match value {
        DbValue::Floating32(_) | DbValue::Floating64(_) => "float",
        DbValue::Date(_) => "date",
        DbValue::Time(_) => "time",
        DbValue::Datetime(_) => "datetime",
        DbValue::Timestamp(_) => "timestamp",
        DbValue::Decimal(_) => "numeric",
        DbValue::Interval(_) => "interval",
        _ => "a range or array type",
    }
}
