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
        pg::Connection::open(self.url.as_ref())
            .await
            .map_err(map_error)
    }

    pub async fn begin(&self, tenant: Option<TenantId>) -> Result<Connection, DbError> {
        let connection = Connection(self.open().await?);
        connection.execute("begin", &[]).await?;
        let Some(tenant) = tenant else {
            return Ok(connection);
        };
        let setting = connection
            .query(
                "select set_config('app.tenant_id', $1, true)",
                &[SqlValue::Text(tenant.to_string())],
            )
            .await;
        if let Err(error) = setting {
            connection.rollback().await;
            return Err(error);
        }
        Ok(connection)
    }

    pub async fn ping(&self) -> Result<(), DbError> {
        Connection(self.open().await?)
            .query("select 1", &[])
            .await
            .map(|_| ())
    }
}

pub struct Connection(pg::Connection);

impl Connection {
    pub async fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, DbError> {
        let result = self
            .0
            .query(sql, to_parameters(params))
            .await
            .map_err(map_error)?;
        let columns: Arc<[String]> = result.columns().iter().map(|c| c.name.clone()).collect();
        let rows = result.collect().await.map_err(map_error)?;
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
        self.0
            .execute(sql, to_parameters(params))
            .await
            .map_err(map_error)
    }

    pub async fn commit(self) -> Result<(), DbError> {
        self.execute("commit", &[]).await.map(|_| ())
    }

    /// Spin's host does not roll back a transaction when it recycles a connection, so a failed
    /// rollback is logged loudly: the next request on that connection would inherit the transaction.
    pub async fn rollback(self) {
        if let Err(error) = self.execute("rollback", &[]).await {
            eprintln!("level=error msg=\"rollback failed\" error=\"{error}\"");
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
