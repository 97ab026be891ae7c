//! Custom field definitions' storage. Bounds travel as text (the database layer has no floating
//! point values): `min`/`max` are written `$n::text::float8` and read `::text`.

use crm_domain::custom_field::{CustomField, FieldType, NewCustomField, SelectOption};
use crm_domain::{ContactId, CustomFieldId, TenantId};
use crm_platform::store::db::{DbError, Row, SqlValue, Tx};
use serde_json::Value;

/// The unique index that refuses a second field with the same key.
pub const KEY_TAKEN: &str = "custom_fields_key";

const COLUMNS: &str = "f.id, f.key, f.label, f.type, f.description, f.required, f.unique_values,
    f.default_value, f.min_length::int8 as min_length, f.max_length::int8 as max_length,
    f.min_value::text as min_value, f.max_value::text as max_value, f.options, f.indexed, f.archived,
    f.version, rfc3339(f.created_at) as created_at, rfc3339(f.updated_at) as updated_at";

const INSERT: &str = "
    insert into custom_fields as f (tenant_id, id, key, label, type, description, required,
        unique_values, default_value, min_length, max_length, min_value, max_value, options,
        indexed, archived)
    values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::int8::int4, $11::int8::int4,
            $12::text::float8, $13::text::float8, $14, $15, $16)
    returning {columns}";
const UPDATE: &str = "
    update custom_fields as f set label = $4, description = $6, required = $7,
        unique_values = $8, default_value = $9, min_length = $10::int8::int4,
        max_length = $11::int8::int4, min_value = $12::text::float8, max_value = $13::text::float8,
        options = $14, indexed = $15, archived = $16, version = version + 1
    where tenant_id = $1 and id = $2 and key = $3 and type = $5
    returning {columns}";
const FIND: &str = "select {columns} from custom_fields f where f.tenant_id = $1 and f.id = $2";
const FIND_FOR_UPDATE: &str =
    "select {columns} from custom_fields f where f.tenant_id = $1 and f.id = $2 for update";
/// By key, archived ones only when asked for.
const LIST: &str = "
    select {columns} from custom_fields f
    where f.tenant_id = $1 and ($2 or not f.archived)
    order by f.key";

fn sql(template: &str) -> String {
    template.replace("{columns}", COLUMNS)
}

fn params(tenant: TenantId, id: CustomFieldId, field: &NewCustomField) -> Vec<SqlValue> {
    let number = |n: Option<f64>| n.map(|n| n.to_string());
    vec![
        tenant.into(),
        id.into(),
        field.key.as_str().into(),
        field.label.as_str().into(),
        field.kind.as_str().into(),
        field.description.clone().into(),
        field.required.into(),
        field.unique.into(),
        field.default.clone().map_or(SqlValue::Null, SqlValue::Json),
        field
            .min_length
            .map(i64::from)
            .map_or(SqlValue::Null, SqlValue::Int),
        field
            .max_length
            .map(i64::from)
            .map_or(SqlValue::Null, SqlValue::Int),
        number(field.min).into(),
        number(field.max).into(),
        SqlValue::Json(serde_json::to_value(&field.options).unwrap_or(Value::Null)),
        field.indexed.into(),
        field.archived.into(),
    ]
}

pub async fn insert(
    tx: &Tx,
    tenant: TenantId,
    field: &NewCustomField,
) -> Result<CustomField, DbError> {
    let row = tx
        .query_one(
            &sql(INSERT),
            &params(tenant, CustomFieldId::generate(), field),
        )
        .await?;
    field_from_row(&row)
}

/// Writes the new rules of field `id`, whose key and type do not change.
pub async fn update(
    tx: &Tx,
    tenant: TenantId,
    id: CustomFieldId,
    field: &NewCustomField,
) -> Result<CustomField, DbError> {
    let row = tx
        .query_one(&sql(UPDATE), &params(tenant, id, field))
        .await?;
    field_from_row(&row)
}

pub async fn find(
    tx: &Tx,
    tenant: TenantId,
    id: CustomFieldId,
    lock: bool,
) -> Result<Option<CustomField>, DbError> {
    let statement = sql(if lock { FIND_FOR_UPDATE } else { FIND });
    tx.query_opt(&statement, &[tenant.into(), id.into()])
        .await?
        .map(|row| field_from_row(&row))
        .transpose()
}

/// The tenant's fields by key (at most 200: no paging), archived ones if `archived`.
pub async fn list(tx: &Tx, tenant: TenantId, archived: bool) -> Result<Vec<CustomField>, DbError> {
    tx.query(&sql(LIST), &[tenant.into(), archived.into()])
        .await?
        .iter()
        .map(field_from_row)
        .collect()
}

/// Whether another live contact than `except` holds `value` in the unique field `key`, after
/// taking the lock of that value (held until the transaction ends), so that two writes of one
/// value at once cannot both pass.
pub async fn value_taken(
    tx: &Tx,
    tenant: TenantId,
    key: &str,
    value: &Value,
    except: Option<ContactId>,
) -> Result<bool, DbError> {
    tx.execute(
        "select pg_advisory_xact_lock(hashtextextended('custom:' || $1::uuid::text || ':' || $2 || ':' || $3::jsonb::text, 0))",
        &[tenant.into(), key.into(), SqlValue::Json(value.clone())],
    )
    .await?;
    Ok(tx
        .query_opt(
            "select 1 from contacts where tenant_id = $1 and deleted_at is null
             and custom -> $2 = $3::jsonb and ($4::uuid is null or id <> $4::uuid) limit 1",
            &[
                tenant.into(),
                key.into(),
                SqlValue::Json(value.clone()),
                except.map_or(SqlValue::Null, |id| id.into()),
            ],
        )
        .await?
        .is_some())
}

/// Every contact's value of `key` (deleted contacts too: they can be restored), by contact.
pub async fn stored_values(
    tx: &Tx,
    tenant: TenantId,
    key: &str,
) -> Result<Vec<(ContactId, Value)>, DbError> {
    tx.query(
        "select id, custom -> $2 from contacts where tenant_id = $1 and jsonb_exists(custom, $2)",
        &[tenant.into(), key.into()],
    )
    .await?
    .iter()
    .map(|row| Ok((row.get(0)?, row.get(1)?)))
    .collect()
}

/// How many contacts (deleted ones too) have no value of `key`.
pub async fn missing_values(tx: &Tx, tenant: TenantId, key: &str) -> Result<i64, DbError> {
    tx.query_one(
        "select count(*)::int8 from contacts where tenant_id = $1 and not jsonb_exists(custom, $2)",
        &[tenant.into(), key.into()],
    )
    .await?
    .get(0)
}

/// How many values of `key` more than one live contact holds.
pub async fn shared_values(tx: &Tx, tenant: TenantId, key: &str) -> Result<i64, DbError> {
    tx.query_one(
        "select count(*)::int8 from (
             select custom -> $2 from contacts
             where tenant_id = $1 and deleted_at is null and jsonb_exists(custom, $2)
             group by custom -> $2 having count(*) > 1) shared",
        &[tenant.into(), key.into()],
    )
    .await?
    .get(0)
}

fn field_from_row(row: &Row) -> Result<CustomField, DbError> {
    let decode = |column: &str, expected: &'static str, found: String| DbError::Decode {
        column: column.into(),
        expected,
        found,
    };
    let kind: String = row.get("type")?;
    let options: Value = row.get("options")?;
    let number = |column: &str| -> Result<Option<f64>, DbError> {
        row.get::<Option<String>>(column)?
            .map(|text| {
                text.parse::<f64>()
                    .map_err(|e| decode(column, "a number", e.to_string()))
            })
            .transpose()
    };
    let length = |column: &str| -> Result<Option<u32>, DbError> {
        Ok(row
            .get::<Option<i64>>(column)?
            .and_then(|n| u32::try_from(n).ok()))
    };
    Ok(CustomField {
        id: row.get("id")?,
        key: row.get("key")?,
        label: row.get("label")?,
        kind: FieldType::parse(&kind)
            .ok_or_else(|| decode("type", "a field type", kind.clone()))?,
        description: row.get("description")?,
        required: row.get("required")?,
        unique: row.get("unique_values")?,
        default: row.get("default_value")?,
        min_length: length("min_length")?,
        max_length: length("max_length")?,
        min: number("min_value")?,
        max: number("max_value")?,
        options: serde_json::from_value::<Vec<SelectOption>>(options)
            .map_err(|e| decode("options", "select options", e.to_string()))?,
        indexed: row.get("indexed")?,
        archived: row.get("archived")?,
        version: row.get("version")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}
