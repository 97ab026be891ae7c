//! The floor of the Spin benchmark: what a read by id costs a component that does nothing else.
//! `GET /floor/contacts/{tenant}/{id}` opens an outbound PostgreSQL connection, runs one select by
//! primary key and answers 200 with the row's id and display name (404 when there is none). No
//! authentication, no configuration beyond `database_url`, no key-value store, no transaction:
//! `crm-bench --floor-url` measures it beside the API in the same run (infra/scripts/bench-spin).

#[cfg(target_arch = "wasm32")]
mod spin_entry {
    use bytes::Bytes;
    use http_body_util::Full;
    use spin_sdk::pg::{Connection, ParameterValue};

    const SELECT: &str =
        "select id::text, display_name from contacts where tenant_id = $1 and id = $2";

    fn answer(status: u16, body: String) -> http::Response<Full<Bytes>> {
        let length = body.len();
        http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .header("content-length", length)
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default()
    }

    #[spin_sdk::http_service]
    async fn handle(request: spin_sdk::http::Request) -> impl spin_sdk::http::IntoResponse {
        let path = request.uri().path().to_owned();
        let mut parts = path.trim_start_matches("/floor/contacts/").split('/');
        let (Some(tenant), Some(id)) = (parts.next(), parts.next()) else {
            return answer(404, "{}".into());
        };
        let Ok(url) = spin_sdk::variables::get("database_url").await else {
            return answer(500, "{\"error\":\"database_url\"}".into());
        };
        let rows = async {
            let connection = Connection::open(&url).await?;
            let params = vec![
                ParameterValue::Uuid(tenant.to_owned()),
                ParameterValue::Uuid(id.to_owned()),
            ];
            connection.query(SELECT, params).await?.collect().await
        };
        match rows.await {
            Ok(rows) if !rows.is_empty() => {
                let text = |i: usize| match &rows[0][i] {
                    spin_sdk::pg::DbValue::Str(s) => s.clone(),
                    _ => String::new(),
                };
                answer(
                    200,
                    format!("{{\"id\":\"{}\",\"display_name\":{:?}}}", text(0), text(1)),
                )
            }
            Ok(_) => answer(404, "{}".into()),
            Err(error) => answer(500, format!("{{\"error\":{:?}}}", error.to_string())),
        }
    }
}
