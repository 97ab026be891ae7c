//! A batch of contact changes. Each operation is the single-contact service call it names, made
//! alone in a savepoint of the batch's one transaction, or with the others of a run of creates and
//! upserts set-wise where that answers as one by one would ([`set_wise`]); each is audited and
//! evented as if made alone (the batch's actor, its request id as correlation id).

use super::set_wise::{self, Item};
use crate::custom_fields;
use crate::handlers::email_keys_in;
use crate::repository;
use crate::service::{self, Upserted};
use crm_domain::contact::batch::{Operation, OperationDraft};
use crm_domain::contact::{Contact, ContactDraft};
use crm_platform::document::from_value;
use crm_platform::http::batch::{alone, op_name, Answer, Answered, Done};
use crm_platform::store::expected::ExpectedVersion;
use crm_platform::store::unit_of_work::UnitOfWork;
use crm_platform::ApiError;
use http::StatusCode;
use serde::Serialize;
use serde_json::Value;

/// What a contact operation answers: the contact as stored (none for a delete).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Changed {
    pub contact: Contact,
}

/// The answer of an operation that did `outcome` to `contact`.
pub(super) fn done(
    status: StatusCode,
    outcome: &'static str,
    contact: Option<Contact>,
) -> Done<Changed> {
    Done {
        status,
        outcome,
        value: contact.map(|contact| Changed { contact }),
    }
}

/// Answers every operation of a batch, in order.
pub async fn apply(
    uow: &UnitOfWork<'_>,
    raw: Vec<Value>,
) -> Result<Vec<Answered<Changed>>, ApiError> {
    let total = raw.len();
    let mut names = Vec::with_capacity(total);
    let mut answers: Vec<Option<Answer<Changed>>> = Vec::with_capacity(total);
    let mut operations: Vec<Option<Operation>> = Vec::with_capacity(total);
    for raw in raw {
        names.push(op_name(&raw));
        match read(raw) {
            Ok(operation) => {
                operations.push(Some(operation));
                answers.push(None);
            }
            Err(error) => {
                operations.push(None);
                answers.push(Some(Err(error)));
            }
        }
    }
    let settings = uow.settings().await?;
    let fields = custom_fields::repository::list(uow.tx(), uow.tenant(), true).await?;
    let mut index = 0;
    while index < total {
        let run = operations[index..]
            .iter()
            .take_while(|operation| {
                matches!(
                    operation,
                    Some(Operation::Create { .. } | Operation::Upsert { .. })
                )
            })
            .count();
        if run >= 2 {
            let items: Vec<Item> = operations[index..index + run]
                .iter()
                .flatten()
                .map(|operation| Item {
                    body: operation.body().unwrap_or(&Value::Null),
                    upsert: matches!(operation, Operation::Upsert { .. }),
                })
                .collect();
            if let Some(made) = set_wise::apply(uow, &items, &settings, &fields).await? {
                for (offset, answer) in made.into_iter().enumerate() {
                    answers[index + offset] = Some(answer);
                }
                index += run;
                continue;
            }
        }
        for position in index..index + run.max(1) {
            if let Some(operation) = &operations[position] {
                answers[position] = Some(alone(uow, async || run_one(uow, operation).await).await?);
            }
        }
        index += run.max(1);
    }

    let mut answered = Vec::with_capacity(total);
    for (position, ((op, answer), operation)) in
        names.into_iter().zip(answers).zip(&operations).enumerate()
    {
        let at = format!("/operations/{position}");
        let answer = answer.unwrap_or_else(|| {
            Err(ApiError::Internal(anyhow::anyhow!(
                "operation {position} was not answered"
            )))
        });
        answered.push(match (answer, operation) {
            (Err(error), Some(operation)) => Answered {
                op,
                answer: Err(name_the_duplicate(uow, operation, error).await?),
                fields_at: format!("{at}{}", operation.body_member()),
            },
            (answer, _) => Answered {
                op,
                answer,
                fields_at: at,
            },
        });
    }
    Ok(answered)
}

/// Reads one operation; its errors point from the operation.
fn read(raw: Value) -> Result<Operation, ApiError> {
    if !raw.is_object() {
        return Err(ApiError::invalid_field(
            "",
            "invalid_type",
            "an operation is an object with an `op`",
        ));
    }
    from_value::<OperationDraft>(raw)?
        .read()
        .map_err(|_| ApiError::NotFound)
}

/// Makes one operation: the single-contact service call, its status as that route answers.
async fn run_one(uow: &UnitOfWork<'_>, operation: &Operation) -> Answer<Changed> {
    let expected = |version: &Option<i64>| version.map(|v| ExpectedVersion::Versions(vec![v]));
    Ok(match operation {
        Operation::Create { contact } => {
            let draft: ContactDraft = from_value(contact.clone())?;
            let created = service::create(uow, draft).await?;
            done(StatusCode::CREATED, "created", Some(created))
        }
        Operation::Upsert { contact } => upsert(uow, contact).await?,
        Operation::Update { id, version, patch } => {
            if !patch.is_object() {
                return Err(ApiError::invalid_field(
                    "",
                    "invalid_type",
                    "a merge patch is a JSON object",
                ));
            }
            let updated = service::update(uow, *id, patch, expected(version).as_ref()).await?;
            done(StatusCode::OK, "updated", Some(updated))
        }
        Operation::Delete { id, version } => {
            service::delete(uow, *id, expected(version).as_ref()).await?;
            done(StatusCode::NO_CONTENT, "deleted", None)
        }
    })
}

/// An upsert keyed by the contact's primary email. A concurrent create of the same email makes
/// the insert fail on the unique key; tried once more, it finds and updates that contact.
async fn upsert(uow: &UnitOfWork<'_>, body: &Value) -> Answer<Changed> {
    let draft: ContactDraft = from_value(body.clone())?;
    let key = service::upsert_key(&draft)?;
    let attempt = async || service::upsert(uow, draft.clone(), body, &key, None).await;
    let upserted = match uow.tx().savepoint(attempt).await? {
        Err(ApiError::Conflict { .. }) => attempt().await?,
        other => other?,
    };
    Ok(match upserted {
        Upserted::Created(contact) => done(StatusCode::CREATED, "created", Some(contact)),
        Upserted::Updated(contact) => done(StatusCode::OK, "updated", Some(contact)),
    })
}

/// Adds `existing_contact_id` to a duplicate-email conflict, as the single-contact routes do.
async fn name_the_duplicate(
    uow: &UnitOfWork<'_>,
    operation: &Operation,
    error: ApiError,
) -> Result<ApiError, ApiError> {
    let ApiError::Conflict {
        detail,
        errors,
        mut extra,
    } = error
    else {
        return Ok(error);
    };
    let body = operation
        .body()
        .filter(|_| errors.iter().any(|e| e.code == "duplicate"));
    if let Some(body) = body {
        let holder =
            repository::live_owner_of_email(uow.tx(), uow.tenant(), email_keys_in(body)).await?;
        if let Some(holder) = holder {
            extra.insert("existing_contact_id".into(), holder.to_string().into());
        }
    }
    Ok(ApiError::Conflict {
        detail,
        errors,
        extra,
    })
}
