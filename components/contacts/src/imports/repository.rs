//! Import storage: the job, its rows as read from the upload, and its per-row errors (migration
//! 0032). Every statement is one round trip, however many rows it writes.

use crm_domain::import::reader::{PartRead, ReadRow, RowProblem};
use crm_domain::import::{Import, ImportOptions, ImportStatus, RowCounts, Upload};
use crm_domain::{ImportId, TenantId};
use crm_platform::http::pagination::CursorTime;
use crm_platform::store::db::{Db, DbError, Keyset, Row, SqlBuilder, SqlValue, Tx};
use serde_json::{json, Value};

const COLUMNS: &str = "i.id, i.status, i.options, i.parts::int8 as parts, i.bytes, i.header,
    i.tail, i.rows_total, i.rows_done, i.last_row, i.next_row, i.created, i.updated, i.skipped, i.failed,
    i.error, i.version, rfc3339(i.created_at) as created_at, rfc3339(i.updated_at) as updated_at,
    rfc3339(i.started_at) as started_at, rfc3339(i.finished_at) as finished_at";

const INSERT: &str = "
    with i as (
        insert into imports (tenant_id, id, format, options, actor_type, actor)
        values ($1, $2, $3, $4, $5, $6)
        returning *
    )
    select {columns} from i";
const FIND: &str = "select {columns} from imports i where i.tenant_id = $1 and i.id = $2";
const FIND_FOR_UPDATE: &str =
    "select {columns} from imports i where i.tenant_id = $1 and i.id = $2 for update";
/// `$3`..`$9`: the options (a CSV's delimiter is fixed by its first part), the part's bytes (none
/// for the end of the upload), the header read so far, the carried tail, the rows it added, the
/// next row's number and the status after it.
const RECORD_PART: &str = "
    update imports set options = $3, parts = parts + case when $4::int8 > 0 then 1 else 0 end,
                       bytes = bytes + $4::int8, header = $5::text[], tail = $6,
                       rows_total = rows_total + $7::int8, next_row = $8::int8, status = $9,
                       version = version + 1
    where tenant_id = $1 and id = $2";
const INSERT_ROWS: &str = "
    insert into import_rows (tenant_id, import_id, row_number, record, problem)
    select $1, $2, r.n::int8, nullif(r.record, ''), nullif(r.problem, '')::jsonb
    from unnest($3::text[], $4::text[], $5::text[]) as r(n, record, problem)";
const NEXT_ROWS: &str = "
    select row_number, record, problem from import_rows
    where tenant_id = $1 and import_id = $2 and row_number > $3
    order by row_number limit $4";
/// Counts the rows of one step and moves past them; renews the worker's lease.
const ADVANCE: &str = "
    update imports set last_row = $3, rows_done = rows_done + $4, created = created + $5,
                       updated = updated + $6, skipped = skipped + $7, failed = failed + $8,
                       lease_until = now() + make_interval(secs => $9::int8::int4),
                       version = version + 1
    where tenant_id = $1 and id = $2";
const SET_STATUS: &str = "
    update imports set status = $3, error = coalesce($4, error),
                       started_at = case when $3 = 'running' then coalesce(started_at, now())
                                         else started_at end,
                       finished_at = case when $3 in ('completed', 'failed', 'cancelled') then now()
                                          else finished_at end,
                       lease_until = case when $3 in ('completed', 'failed', 'cancelled') then null
                                          else lease_until end,
                       tail = case when $3 in ('completed', 'failed', 'cancelled') then ''::bytea
                                   else tail end,
                       version = version + 1
    where tenant_id = $1 and id = $2";
const DELETE_ROWS: &str = "delete from import_rows where tenant_id = $1 and import_id = $2";
const INSERT_ERRORS: &str = "
    insert into import_errors (tenant_id, import_id, row_number, position, column_name, code, message)
    select $1, $2, e.row_number::int8, e.position::int4, nullif(e.column_name, ''), e.code, e.message
    from unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
        as e(row_number, position, column_name, code, message)";
const ERRORS: &str = "
    select row_number, position::int8 as position, column_name, code, message from import_errors
    where tenant_id = $1 and import_id = $2 and (row_number, position) > ($3, $4::int8::int4)
    order by row_number, position limit $5";

fn sql(template: &str) -> String {
    template.replace("{columns}", COLUMNS)
}

/// A job as stored: what the API shows, and what its work needs.
#[derive(Debug, Clone)]
pub struct Job {
    pub import: Import,
    pub tail: Vec<u8>,
    /// The last row applied.
    pub last_row: i64,
    /// The number the next row read from the upload takes.
    pub next_row: i64,
}

impl Job {
    pub fn status(&self) -> ImportStatus {
        self.import.status
    }

    pub fn options(&self) -> &ImportOptions {
        &self.import.options
    }
}

/// What one step did, to be counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepCounts {
    pub processed: i64,
    pub created: i64,
    pub updated: i64,
    pub skipped: i64,
    pub failed: i64,
}

/// A problem of one row, numbered within its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub row: i64,
    pub position: i64,
    pub problem: RowProblem,
}

pub async fn insert(
    tx: &Tx,
    tenant: TenantId,
    id: ImportId,
    options: &ImportOptions,
    actor: &crm_domain::Actor,
) -> Result<Job, DbError> {
    let row = tx
        .query_one(
            &sql(INSERT),
            &[
                tenant.into(),
                id.into(),
                options.format.as_str().into(),
                SqlValue::Json(options_json(options)?),
                actor.kind().into(),
                actor.id().into(),
            ],
        )
        .await?;
    job_from_row(&row)
}

pub async fn find(
    tx: &Tx,
    tenant: TenantId,
    id: ImportId,
    for_update: bool,
) -> Result<Option<Job>, DbError> {
    let statement = if for_update { FIND_FOR_UPDATE } else { FIND };
    tx.query_opt(&sql(statement), &[tenant.into(), id.into()])
        .await?
        .as_ref()
        .map(job_from_row)
        .transpose()
}

/// The tenant's jobs, newest first, after the cursor `(created_at, id)`.
pub async fn list(
    tx: &Tx,
    tenant: TenantId,
    after: Option<&(CursorTime, ImportId)>,
    limit: i64,
) -> Result<Vec<(Job, String)>, DbError> {
    let mut query = SqlBuilder::new(
        sql("select {columns}, rfc3339(i.created_at) as sort_key from imports i where i.tenant_id = $1"),
        vec![tenant.into()],
    );
    query.page(
        &Keyset {
            key: Some(("i.created_at", "?::text::timestamptz")),
            id: "i.id",
            descending: true,
        },
        after.map(|(time, id)| vec![time.as_str().into(), (*id).into()]),
        limit,
    );
    tx.query(&query.sql, &query.params)
        .await?
        .iter()
        .map(|row| Ok((job_from_row(row)?, row.get("sort_key")?)))
        .collect()
}

/// Stores the rows one part added (`bytes` long; 0 for the end of the upload) and what reading it
/// left for the next.
pub async fn record_part(
    tx: &Tx,
    tenant: TenantId,
    id: ImportId,
    options: &ImportOptions,
    bytes: i64,
    read: &PartRead,
    status: ImportStatus,
) -> Result<(), DbError> {
    // A few thousand rows per statement keeps each parameter modest.
    for chunk in read.rows.chunks(5_000) {
        let numbers = chunk.iter().map(|row| row.row.to_string()).collect();
        let records = chunk
            .iter()
            .map(|row| row.record.clone().unwrap_or_default())
            .collect();
        let problems = chunk
            .iter()
            .map(|row| match &row.record {
                Ok(_) => String::new(),
                Err(problem) => problem_json(problem).to_string(),
            })
            .collect();
        tx.execute(
            INSERT_ROWS,
            &[
                tenant.into(),
                id.into(),
                SqlValue::TextArray(numbers),
                SqlValue::TextArray(records),
                SqlValue::TextArray(problems),
            ],
        )
        .await?;
    }
    tx.execute(
        RECORD_PART,
        &[
            tenant.into(),
            id.into(),
            SqlValue::Json(options_json(options)?),
            bytes.into(),
            read.progress.header.clone().into(),
            read.progress.tail.clone().into(),
            (read.rows.len() as i64).into(),
            read.progress.next_row.into(),
            status.as_str().into(),
        ],
    )
    .await?;
    Ok(())
}

fn options_json(options: &ImportOptions) -> Result<Value, DbError> {
    serde_json::to_value(options).map_err(|error| DbError::Decode {
        column: "options".into(),
        expected: "import options",
        found: error.to_string(),
    })
}

fn problem_json(problem: &RowProblem) -> Value {
    json!({"column": problem.column, "code": problem.code, "message": problem.message})
}

/// Up to `limit` rows after row `after`, in order.
pub async fn next_rows(
    tx: &Tx,
    tenant: TenantId,
    id: ImportId,
    after: i64,
    limit: i64,
) -> Result<Vec<ReadRow>, DbError> {
    tx.query(
        NEXT_ROWS,
        &[tenant.into(), id.into(), after.into(), limit.into()],
    )
    .await?
    .iter()
    .map(|row| {
        let problem: Option<Value> = row.get("problem")?;
        let record = match problem {
            None => Ok(row.get::<String>("record")?),
            Some(problem) => Err(RowProblem {
                column: problem["column"].as_str().map(str::to_owned),
                code: problem["code"].as_str().unwrap_or("unreadable").to_owned(),
                message: problem["message"].as_str().unwrap_or_default().to_owned(),
            }),
        };
        Ok(ReadRow {
            row: row.get("row_number")?,
            record,
        })
    })
    .collect()
}

pub async fn advance(
    tx: &Tx,
    tenant: TenantId,
    id: ImportId,
    last_row: i64,
    counts: StepCounts,
    lease_seconds: i64,
) -> Result<(), DbError> {
    tx.execute(
        ADVANCE,
        &[
            tenant.into(),
            id.into(),
            last_row.into(),
            counts.processed.into(),
            counts.created.into(),
            counts.updated.into(),
            counts.skipped.into(),
            counts.failed.into(),
            lease_seconds.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Moves the job to `status` (with `error` when it failed); a job that ends drops its rows.
pub async fn set_status(
    tx: &Tx,
    tenant: TenantId,
    id: ImportId,
    status: ImportStatus,
    error: Option<&str>,
) -> Result<(), DbError> {
    tx.execute(
        SET_STATUS,
        &[
            tenant.into(),
            id.into(),
            status.as_str().into(),
            error.into(),
        ],
    )
    .await?;
    if status.is_final() {
        tx.execute(DELETE_ROWS, &[tenant.into(), id.into()]).await?;
    }
    Ok(())
}

pub async fn insert_errors(
    tx: &Tx,
    tenant: TenantId,
    id: ImportId,
    errors: &[RowError],
) -> Result<(), DbError> {
    if errors.is_empty() {
        return Ok(());
    }
    let column = |value: &dyn Fn(&RowError) -> String| {
        SqlValue::TextArray(errors.iter().map(value).collect())
    };
    tx.execute(
        INSERT_ERRORS,
        &[
            tenant.into(),
            id.into(),
            column(&|e| e.row.to_string()),
            column(&|e| e.position.to_string()),
            column(&|e| e.problem.column.clone().unwrap_or_default()),
            column(&|e| e.problem.code.clone()),
            column(&|e| e.problem.message.clone()),
        ],
    )
    .await?;
    Ok(())
}

/// Up to `limit` errors after `(row, position)`, in order.
pub async fn errors(
    tx: &Tx,
    tenant: TenantId,
    id: ImportId,
    after: (i64, i64),
    limit: i64,
) -> Result<Vec<RowError>, DbError> {
    tx.query(
        ERRORS,
        &[
            tenant.into(),
            id.into(),
            after.0.into(),
            after.1.into(),
            limit.into(),
        ],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(RowError {
            row: row.get("row_number")?,
            position: row.get("position")?,
            problem: RowProblem {
                column: row.get("column_name")?,
                code: row.get("code")?,
                message: row.get("message")?,
            },
        })
    })
    .collect()
}

fn job_from_row(row: &Row) -> Result<Job, DbError> {
    let status: String = row.get("status")?;
    let options: Value = row.get("options")?;
    let decode = |column: &str, expected: &'static str, found: String| DbError::Decode {
        column: column.into(),
        expected,
        found,
    };
    let id: ImportId = row.get("id")?;
    let rows = RowCounts {
        read: row.get("rows_total")?,
        processed: row.get("rows_done")?,
        created: row.get("created")?,
        updated: row.get("updated")?,
        skipped: row.get("skipped")?,
        failed: row.get("failed")?,
    };
    let status = ImportStatus::parse(&status)
        .ok_or_else(|| decode("status", "an import status", status.clone()))?;
    let progress = match (status, rows.read) {
        (ImportStatus::Completed, _) => 1.0,
        (_, 0) => 0.0,
        (_, read) => rows.processed as f64 / read as f64,
    };
    Ok(Job {
        import: Import {
            id,
            status,
            options: serde_json::from_value(options)
                .map_err(|e| decode("options", "import options", e.to_string()))?,
            upload: Upload {
                parts: row.get("parts")?,
                bytes: row.get("bytes")?,
            },
            columns: row.get("header")?,
            rows,
            progress,
            error: row.get("error")?,
            errors_url: format!("/api/v1/imports/{id}/errors"),
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
            started_at: row.get("started_at")?,
            finished_at: row.get("finished_at")?,
            version: row.get("version")?,
        },
        tail: row.get("tail")?,
        last_row: row.get("last_row")?,
        next_row: row.get("next_row")?,
    })
}

/// Refreshes the planner's statistics of the tables an import writes (`analyze_contacts`, run as
/// the schema owner: the application's role owns no table), in a transaction of its own.
pub async fn analyze_contacts(db: &Db) -> Result<(), DbError> {
    db.unscoped_transaction(async |tx: &Tx| {
        tx.execute("select analyze_contacts()", &[]).await?;
        Ok::<_, DbError>(())
    })
    .await
}
