//! The shape every batch route shares: `{"atomic": bool, "operations": [...]}` in, one result per
//! operation in order out. Each operation is made alone in a savepoint of the request's one
//! transaction (or set-wise by a route that can answer as one by one would), so that a failure
//! leaves nothing of that operation behind and the others stand; an atomic batch with any failure
//! is rolled back whole and answered `batch-not-applied`. The whole batch is idempotent under one
//! `Idempotency-Key`, and counts against the expensive rate limit once per operation.

use crate::http::json::parse_body;
use crate::http::response::json;
use crate::http::ApiResponse;
use crate::store::unit_of_work::UnitOfWork;
use crate::{ApiError, RequestContext};
use crm_domain::FieldError;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most operations one batch may hold.
pub const MAX_OPERATIONS: usize = 1_000;

/// What a failed operation's result says it did.
pub const FAILED: &str = "failed";
/// What an operation of a failed atomic batch that would have succeeded says it did: undone.
pub const NOT_APPLIED: &str = "not_applied";

/// A batch body, each operation still raw: one that does not read is that operation's failure,
/// not the batch's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchDraft {
    /// All or nothing, in one transaction; otherwise each operation stands alone.
    #[serde(default)]
    pub atomic: bool,
    pub operations: Vec<Value>,
}

/// What one operation did: its status as the single route would have answered, a word for what
/// it did (`created`, `attached`, ...), and what it answers (members of its result).
pub struct Done<T> {
    pub status: StatusCode,
    pub outcome: &'static str,
    pub value: Option<T>,
}

/// One operation's answer.
pub type Answer<T> = Result<Done<T>, ApiError>;

/// One operation's result: its status, what it did, its value's members, or its problem (RFC
/// 9457) with field pointers from the batch's root.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperationResult<T> {
    pub op: String,
    pub status: u16,
    pub outcome: &'static str,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub value: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<Value>,
}

/// The answer to a batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchResults<T> {
    pub atomic: bool,
    pub succeeded: usize,
    pub failed: usize,
    pub results: Vec<OperationResult<T>>,
}

/// One operation, answered: its `op` as sent, its answer, and where the fields its error names
/// start (`/operations/<i>` for an operation that did not read, deeper for one whose body failed).
pub struct Answered<T> {
    pub op: String,
    pub answer: Answer<T>,
    pub fields_at: String,
}

/// The `op` of a raw operation, as its client wrote it.
pub fn op_name(raw: &Value) -> String {
    raw.get("op")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Makes one operation alone, in a savepoint: when it fails, nothing it wrote stays. A server
/// error (a lost connection, a timeout) is the batch's, not the operation's.
pub async fn alone<T>(
    uow: &UnitOfWork<'_>,
    work: impl AsyncFnOnce() -> Answer<T>,
) -> Result<Answer<T>, ApiError> {
    match uow.tx().savepoint(work).await? {
        Err(error) if error.status().is_server_error() => Err(error),
        answer => Ok(answer),
    }
}

/// Answers every operation of a batch alone, in order: `read` reads one (its errors point from
/// the operation), `make` makes it in a savepoint.
pub async fn one_by_one<O: Copy, T, F>(
    uow: &UnitOfWork<'_>,
    operations: Vec<Value>,
    read: impl Fn(Value) -> Result<O, ApiError>,
    make: impl Fn(O) -> F,
) -> Result<Vec<Answered<T>>, ApiError>
where
    F: std::future::Future<Output = Answer<T>>,
{
    let mut answered = Vec::with_capacity(operations.len());
    for (position, raw) in operations.into_iter().enumerate() {
        let op = op_name(&raw);
        let answer = match read(raw) {
            Err(error) => Err(error),
            Ok(operation) => alone(uow, async || make(operation).await).await?,
        };
        answered.push(Answered {
            op,
            answer,
            fields_at: format!("/operations/{position}"),
        });
    }
    Ok(answered)
}

impl RequestContext {
    /// Answers a batch route: reads the body (1 to [`MAX_OPERATIONS`] operations, 422 at
    /// `/operations` otherwise), counts its operations against the expensive limit, and has
    /// `apply` answer each operation in the request's unit of work. 200 when every operation
    /// succeeded, 207 when some failed and the others stand; an atomic batch with a failure
    /// answers `batch-not-applied` and writes nothing.
    pub async fn batch<T: Serialize>(
        &self,
        apply: impl AsyncFnOnce(&UnitOfWork<'_>, Vec<Value>) -> Result<Vec<Answered<T>>, ApiError>,
    ) -> Result<ApiResponse, ApiError> {
        let draft: BatchDraft = parse_body(&self.request)?;
        match draft.operations.len() {
            0 => {
                return Err(ApiError::invalid_field(
                    "/operations",
                    "required",
                    "give at least one operation",
                ))
            }
            n if n > MAX_OPERATIONS => {
                return Err(ApiError::invalid_field(
                    "/operations",
                    "too_many",
                    format!("at most {MAX_OPERATIONS} operations per batch"),
                ))
            }
            _ => {}
        }
        self.charge_operations(draft.operations.len()).await?;
        let atomic = draft.atomic;
        self.write(async |uow| {
            let results = results(atomic, apply(uow, draft.operations).await?)?;
            let status = if results.failed == 0 {
                StatusCode::OK
            } else {
                StatusCode::MULTI_STATUS
            };
            json(status, &results)
        })
        .await
    }
}

/// The batch's results from its answers, in order; an atomic batch with a failure is
/// `ApiError::BatchNotApplied` (its unit of work then rolls back).
fn results<T: Serialize>(
    atomic: bool,
    answered: Vec<Answered<T>>,
) -> Result<BatchResults<T>, ApiError> {
    let mut faults = Vec::new();
    let mut results = Vec::with_capacity(answered.len());
    for (
        position,
        Answered {
            op,
            answer,
            fields_at,
        },
    ) in answered.into_iter().enumerate()
    {
        results.push(match answer {
            Ok(done) => OperationResult {
                op,
                status: done.status.as_u16(),
                outcome: done.outcome,
                value: done.value,
                problem: None,
            },
            Err(error) if error.status().is_server_error() => return Err(error),
            Err(error) => failed(op, &error, position, &fields_at, &mut faults),
        });
    }
    let failed = results.iter().filter(|r| r.outcome == FAILED).count();
    if atomic && failed > 0 {
        return Err(not_applied(results, failed, faults));
    }
    Ok(BatchResults {
        atomic,
        succeeded: results.len() - failed,
        failed,
        results,
    })
}

/// A failed operation's result: its problem, with field pointers from the batch's root
/// (`fields_at` is where the fields its error names start). Its fields at fault join `faults`: its
/// own, or one naming the operation for an error without any (a 404, a 412).
fn failed<T>(
    op: String,
    error: &ApiError,
    position: usize,
    fields_at: &str,
    faults: &mut Vec<FieldError>,
) -> OperationResult<T> {
    let own: Vec<FieldError> = error
        .field_errors()
        .iter()
        .map(|e| {
            let field = if e.field.is_empty() || e.field.starts_with('/') {
                format!("{fields_at}{}", e.field)
            } else {
                e.field.clone()
            };
            FieldError::new(field, e.code, e.message.clone())
        })
        .collect();
    let mut problem = error.to_problem(None);
    if own.is_empty() {
        let detail = problem["detail"].as_str().unwrap_or_default().to_owned();
        faults.push(FieldError::new(
            format!("/operations/{position}"),
            code_of(error.status()),
            detail,
        ));
    } else {
        problem["errors"] = serde_json::json!(own);
        faults.extend(own);
    }
    OperationResult {
        op,
        status: error.status().as_u16(),
        outcome: FAILED,
        value: None,
        problem: Some(problem),
    }
}

/// The problem of an atomic batch with failures: the first failure's status, the fields at fault
/// of every failed operation, and every result, those that would have succeeded as `424
/// not_applied`.
fn not_applied<T: Serialize>(
    results: Vec<OperationResult<T>>,
    failed: usize,
    faults: Vec<FieldError>,
) -> ApiError {
    let total = results.len();
    let status = results
        .iter()
        .find(|r| r.outcome == FAILED)
        .and_then(|r| StatusCode::from_u16(r.status).ok())
        .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    let results: Vec<OperationResult<T>> = results
        .into_iter()
        .map(|mut result| {
            if result.outcome != FAILED {
                result.status = StatusCode::FAILED_DEPENDENCY.as_u16();
                result.outcome = NOT_APPLIED;
                result.value = None;
            }
            result
        })
        .collect();
    ApiError::BatchNotApplied {
        status,
        detail: format!("{failed} of {total} operations failed; nothing was written"),
        errors: faults,
        results: serde_json::to_value(results).unwrap_or_default(),
    }
}

/// The code of an operation that failed without a field error: by its status.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::PRECONDITION_FAILED => "stale_version",
        StatusCode::PRECONDITION_REQUIRED => "version_required",
        StatusCode::CONFLICT => "conflict",
        _ => "failed",
    }
}
