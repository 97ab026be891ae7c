//! Native backend: a deadpool of tokio-postgres connections, prepared statements cached per connection.

use super::{DbError, Row, SqlValue};
use bytes::BytesMut;
use crm_domain::TenantId;
use deadpool_postgres::{Manager, ManagerConfig, Object, RecyclingMethod};
use std::str::FromStr;
use std::sync::Arc;
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::NoTls;

/// How long a request waits for a pooled connection (and for a new one to open) before it is
/// answered 503 with `Retry-After`, instead of queueing without bound behind a stalled database.
pub const POOL_WAIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Clone)]
pub struct Pool(deadpool_postgres::Pool);

impl Pool {
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| anyhow::anyhow!("database_url is not a PostgreSQL URL: {e}"))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let size = std::thread::available_parallelism().map_or(4, |n| n.get()) * 8;
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT_TIMEOUT))
            .create_timeout(Some(POOL_WAIT_TIMEOUT))
            .recycle_timeout(Some(POOL_WAIT_TIMEOUT))
            .build()?;
        Ok(Self(pool))
    }

    /// How many connections the pool holds at most.
    pub fn max_size(&self) -> usize {
        self.0.status().max_size
    }

    async fn client(&self) -> Result<Object, DbError> {
        crate::metering::checkout(self.0.get())
            .await
            .map_err(|e| DbError::Unavailable(e.to_string()))
    }

    /// `begin` and the tenant setting in one round trip (the simple protocol allows two statements;
    /// the tenant id is a UUID we formatted, never client text). Without a tenant the setting is
    /// emptied, so that no session value a read left on this connection applies.
    pub async fn begin(&self, tenant: Option<TenantId>) -> Result<Connection, DbError> {
        let tenant = tenant.map(|t| t.as_uuid().to_string()).unwrap_or_default();
        self.prepared(&format!(
            "begin; select set_config('app.tenant_id', '{tenant}', true)"
        ))
        .await
    }

    /// A connection outside any transaction, its session set to `tenant`: each statement commits
    /// on its own. Every use of a connection sets the tenant first, so the value never outlives
    /// the request that set it.
    pub async fn session(&self, tenant: TenantId) -> Result<Connection, DbError> {
        self.prepared(&format!(
            "select set_config('app.tenant_id', '{}', false)",
            tenant.as_uuid()
        ))
        .await
    }

    /// A pooled connection on which `statements` ran, in one round trip.
    async fn prepared(&self, statements: &str) -> Result<Connection, DbError> {
        let client = self.client().await?;
        crate::metering::db(client.batch_execute(statements))
            .await
            .map_err(map_error)?;
        Ok(Connection {
            client: Some(client),
        })
    }

    /// `sql` on a pooled connection as it comes: the call sets the tenant itself. A native
    /// connection is never returned to the pool inside a transaction.
    pub async fn call(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, DbError> {
        let connection = Connection {
            client: Some(self.client().await?),
        };
        let rows = connection.query(sql, params).await;
        connection.release();
        rows
    }

    pub async fn ping(&self) -> Result<(), DbError> {
        let client = self.client().await?;
        crate::metering::db(client.simple_query("select 1"))
            .await
            .map_err(map_error)?;
        Ok(())
    }
}

/// A pooled connection inside a transaction. If it is dropped unfinished (the request's future was
/// cancelled) the connection is discarded rather than returned to the pool mid-transaction.
pub struct Connection {
    client: Option<Object>,
}

impl Connection {
    fn client(&self) -> &Object {
        self.client
            .as_ref()
            .expect("a connection is only emptied when it finishes")
    }

    pub async fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, DbError> {
        let client = self.client();
        let statement = client.prepare_cached(sql).await.map_err(map_error)?;
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = crate::metering::db(client.query(&statement, &params))
            .await
            .map_err(map_error)?;
        let columns: Arc<[String]> = statement
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        rows.iter()
            .map(|row| {
                let values = (0..row.len())
                    .map(|i| decode(row, i, &columns[i]))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Row::new(columns.clone(), values))
            })
            .collect()
    }

    pub async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<u64, DbError> {
        let client = self.client();
        let statement = client.prepare_cached(sql).await.map_err(map_error)?;
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        crate::metering::db(client.execute(&statement, &params))
            .await
            .map_err(map_error)
    }

    pub async fn commit(mut self) -> Result<(), DbError> {
        let client = self.client.take().expect("commit runs once");
        crate::metering::db(client.batch_execute("commit"))
            .await
            .map_err(map_error)
    }

    /// Hands a session connection (outside any transaction) back to the pool.
    pub fn release(mut self) {
        drop(self.client.take());
    }

    pub async fn rollback(mut self) {
        let client = self.client.take().expect("rollback runs once");
        if let Err(error) = crate::metering::db(client.batch_execute("rollback")).await {
            // The connection is in an unknown state: never hand it to another request.
            tracing::warn!(error = %error, "rollback failed, discarding connection");
            let _discarded = Object::take(client);
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _discarded = Object::take(client);
        }
    }
}

fn decode(row: &tokio_postgres::Row, index: usize, column: &str) -> Result<SqlValue, DbError> {
    let ty = row.columns()[index].type_().clone();
    let failed = |e: tokio_postgres::Error| DbError::Decode {
        column: column.to_owned(),
        expected: "a supported type",
        found: e.to_string(),
    };
    macro_rules! get {
        ($t:ty, $variant:expr) => {
            row.try_get::<_, Option<$t>>(index)
                .map_err(failed)?
                .map_or(SqlValue::Null, $variant)
        };
    }
    Ok(match ty {
        Type::BOOL => get!(bool, SqlValue::Bool),
        Type::INT2 => get!(i16, |n| SqlValue::Int(n.into())),
        Type::INT4 => get!(i32, |n| SqlValue::Int(n.into())),
        Type::INT8 => get!(i64, SqlValue::Int),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => get!(String, SqlValue::Text),
        Type::UUID => get!(uuid::Uuid, SqlValue::Uuid),
        Type::JSON | Type::JSONB => get!(serde_json::Value, SqlValue::Json),
        Type::BYTEA => get!(Vec<u8>, SqlValue::Bytes),
        Type::TEXT_ARRAY => get!(Vec<String>, SqlValue::TextArray),
        other => {
            return Err(DbError::Decode {
                column: column.to_owned(),
                expected: "bool, integer, text, uuid, json, bytea or text[] (format timestamps with rfc3339())",
                found: other.to_string(),
            })
        }
    })
}

fn map_error(error: tokio_postgres::Error) -> DbError {
    match error.as_db_error() {
        Some(db) => DbError::from_sqlstate(
            db.code().code(),
            db.constraint().map(str::to_owned),
            db.message(),
        ),
        None if error.is_closed() => DbError::Unavailable(error.to_string()),
        None => DbError::Query(error.to_string()),
    }
}

impl ToSql for SqlValue {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            SqlValue::Null => Ok(IsNull::Yes),
            SqlValue::Bool(v) => v.to_sql(ty, out),
            SqlValue::Int(v) => match *ty {
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                _ => v.to_sql(ty, out),
            },
            SqlValue::Text(v) => v.to_sql(ty, out),
            SqlValue::Uuid(v) => v.to_sql(ty, out),
            SqlValue::Json(v) => v.to_sql(ty, out),
            SqlValue::Bytes(v) => v.to_sql(ty, out),
            SqlValue::TextArray(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let accepted = match self {
            SqlValue::Null => true,
            SqlValue::Bool(_) => <bool as ToSql>::accepts(ty),
            SqlValue::Int(_) => matches!(*ty, Type::INT2 | Type::INT4 | Type::INT8),
            SqlValue::Text(_) => <String as ToSql>::accepts(ty),
            SqlValue::Uuid(_) => <uuid::Uuid as ToSql>::accepts(ty),
            SqlValue::Json(_) => <serde_json::Value as ToSql>::accepts(ty),
            SqlValue::Bytes(_) => <Vec<u8> as ToSql>::accepts(ty),
            SqlValue::TextArray(_) => <Vec<String> as ToSql>::accepts(ty),
        };
        if !accepted {
            return Err(format!("a {self:?} parameter cannot be sent as {ty}")
                .chars()
                .take(120)
                .collect::<String>()
                .into());
        }
        self.to_sql(ty, out)
    }
}
