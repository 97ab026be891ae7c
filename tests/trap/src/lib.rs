//! A test-only Spin component that traps in the middle of a transaction, the way a bug or an
//! exhausted resource would: `POST /__test/trap?tenant={id}&marker={text}` opens a transaction
//! through the platform's `Db` (as every handler does), writes an audit record whose actor is
//! `marker`, and panics before committing. The Spin tier serves it beside the API in one `spin up`
//! (so both draw on the host's one connection pool); `tests/tests/exclusive/transactions.rs` then shows that
//! the write never becomes visible and no session stays idle in its transaction.

#[cfg(target_arch = "wasm32")]
mod spin_entry {
    use crm_domain::TenantId;
    use crm_platform::store::db::{Db, DbError, SqlValue, Tx};

    const WRITE: &str = "insert into audit_log (tenant_id, id, occurred_at, actor, action, entity_type, entity_id, request_id)
                         values ($1, gen_random_uuid(), now(), $2, 'trap', 'contact', gen_random_uuid(), 'trap')";

    fn answer(status: u16) -> http::Response<http_body_util::Full<bytes::Bytes>> {
        http::Response::builder()
            .status(status)
            .header("content-length", 0)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap_or_default()
    }

    #[spin_sdk::http_service]
    async fn handle(request: spin_sdk::http::Request) -> impl spin_sdk::http::IntoResponse {
        let query = request.uri().query().unwrap_or_default().to_owned();
        let mut tenant = None;
        let mut marker = String::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            match name.as_ref() {
                "tenant" => tenant = TenantId::parse(&value),
                "marker" => marker = value.into_owned(),
                _ => {}
            }
        }
        let (Some(tenant), Ok(url)) = (tenant, spin_sdk::variables::get("database_url").await)
        else {
            return answer(400);
        };
        let Ok(db) = Db::connect(&url) else {
            return answer(500);
        };
        let _never: Result<(), DbError> = db
            .transaction(tenant, async |tx: &Tx| {
                tx.execute(WRITE, &[tenant.into(), SqlValue::Text(marker)])
                    .await?;
                panic!("trapping mid-transaction");
            })
            .await;
        answer(500)
    }
}
