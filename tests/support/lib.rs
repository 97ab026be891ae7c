//! The HTTP test harness. By default it creates a fresh database, migrates it, and hosts every
//! component's handlers in-process on a loopback port. With `CRM_TEST_BASE_URL` set, the same tests
//! run against that live deployment instead (see the README's "Testing").

pub mod jobs;
pub mod receiver;

use crm_domain::TenantId;
use crm_platform::config::{Config, JwtConfig};
use crm_platform::edge::kv::KeyValue;
use crm_platform::App;
use reqwest::Method;
use serde_json::Value;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the suite sends requests and how it reaches the database behind them.
pub struct Harness {
    pub base_url: String,
    /// The schema owner: creates tenants and inspects what was stored, bypassing RLS.
    pub owner_url: String,
    /// The application role, for proving what RLS does to it.
    pub app_url: String,
    pub jwt: JwtConfig,
    /// True when the server runs in this process (tests that need to start servers of their own).
    pub in_process: bool,
    /// The deployment's operator token (`operator_token`), for the operator dispatch route.
    pub operator_token: String,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

/// A libpq key/value prefix for the local cluster; `dbname` and `user` are appended.
fn cluster() -> String {
    std::env::var("CRM_TEST_PG").unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres".into())
}

pub fn test_jwt_config() -> JwtConfig {
    JwtConfig {
        issuer: "crm-test".into(),
        audience: "crm-api-test".into(),
        hs256_secret: Some("test-secret-that-is-at-least-32-bytes-long".into()),
        public_keys: None,
        leeway_seconds: 30,
        max_token_bytes: 8192,
        max_lifetime_seconds: 86400,
    }
}

pub fn harness() -> &'static Harness {
    HARNESS.get_or_init(|| match std::env::var("CRM_TEST_BASE_URL") {
        Ok(base_url) => live(base_url),
        Err(_) => in_process(),
    })
}

fn live(base_url: String) -> Harness {
    let env = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| panic!("{name} must be set with CRM_TEST_BASE_URL"))
    };
    let config =
        Config::from_env().expect("SPIN_VARIABLE_* must describe the deployment's JWT settings");
    Harness {
        base_url: base_url.trim_end_matches('/').to_owned(),
        owner_url: env("CRM_TEST_DATABASE_URL"),
        app_url: env("CRM_TEST_APP_DATABASE_URL"),
        jwt: config.jwt,
        in_process: false,
        operator_token: env("CRM_TEST_OPERATOR_TOKEN"),
    }
}

/// True when the harness serves a live deployment, on which the calling test cannot run: it then
/// returns at once. Such a test needs something only an in-process server gives it (a server or
/// database of its own, a configuration of its own); `why` says what. The Spin tier counts these
/// (`CRM_TEST_IN_PROCESS_ONLY_LOG`), so that what runs only in-process stays visible.
#[track_caller]
pub fn in_process_only(why: &str) -> bool {
    if harness().in_process {
        return false;
    }
    if let Ok(path) = std::env::var("CRM_TEST_IN_PROCESS_ONLY_LOG") {
        use std::io::Write;
        let location = std::panic::Location::caller();
        let test = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned();
        // One write per line: tests run in parallel, and a line written in pieces can interleave
        // with another test's.
        let line = format!("{test} ({}:{}): {why}\n", location.file(), location.line());
        if let Ok(mut log) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
        {
            let _ignored = log.write_all(line.as_bytes());
        }
    }
    true
}

/// A configuration for an in-process server on `database`; `overrides` replace variables.
pub fn test_config_with(database_url: String, overrides: &[(&str, &str)]) -> Config {
    let jwt = test_jwt_config();
    Config::from_lookup(|name| match name {
        _ if overrides.iter().any(|(key, _)| *key == name) => overrides
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_string()),
        "database_url" => Some(database_url.clone()),
        "jwt_issuer" => Some(jwt.issuer.clone()),
        "jwt_audience" => Some(jwt.audience.clone()),
        "jwt_hs256_secret" => jwt.hs256_secret.clone(),
        // Room for a note of the largest size (64 KiB) in its JSON body.
        "max_body_bytes" => Some("131072".into()),
        "default_phone_region" => Some("US".into()),
        // Every request is counted, as in production; the defaults are far above what the suite
        // sends, and tests of the limits give their tenants limits of their own (overrides).
        "rate_limit_enabled" => Some("true".into()),
        "rate_limit_tenant_per_minute"
        | "rate_limit_principal_per_minute"
        | "rate_limit_expensive_per_minute" => Some(SUITE_RATE_LIMIT.into()),
        // What a server knows of a tenant is read on every request, so that a test's change of
        // a tenant (suspension, rate limits) applies at once.
        "tenant_cache_seconds" => Some("0".into()),
        // The cache is off by default; the suite keeps it on, so that its effects are tested.
        "cache_enabled" => Some("true".into()),
        // Wake-ups stay in-process unless a test asks for Redis.
        "redis_url" => Some("none".into()),
        // Webhook receivers listen on loopback; retries come quickly.
        "webhook_local_hosts" => Some("127.0.0.1".into()),
        "webhook_timeout_seconds" => Some("2".into()),
        "webhook_retry_schedule" => Some("0,1,1".into()),
        "operator_token" => Some(TEST_OPERATOR_TOKEN.into()),
        _ => None,
    })
    .expect("the test configuration is complete")
}

/// The suite's default rate limits (per minute, for every counter); `infra/scripts/spin-tier`
/// configures its deployment with the same.
pub const SUITE_RATE_LIMIT: &str = "1000000";

/// The operator credential of in-process servers.
pub const TEST_OPERATOR_TOKEN: &str = "test-operator-token-of-at-least-32-bytes";

/// The suite's configuration: rate limits far above what it sends, the read cache on.
pub fn test_config(database_url: String) -> Config {
    test_config_with(database_url, &[])
}

fn in_process() -> Harness {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        runtime.block_on(async move {
            let database = fresh_database().await;
            let owner_url = format!("{} dbname={database}", cluster());
            crm::migrate::run(&owner_url)
                .await
                .expect("migrations apply to a fresh database");
            let app_url = format!("{} dbname={database} user=crm_app", cluster());
            let base_url = start_server_with_dispatcher(test_config(app_url.clone())).await;
            sender
                .send(Harness {
                    base_url,
                    owner_url,
                    app_url,
                    jwt: test_jwt_config(),
                    in_process: true,
                    operator_token: TEST_OPERATOR_TOKEN.into(),
                })
                .expect("the harness is waiting");
            std::future::pending::<()>().await;
        });
    });
    receiver
        .recv_timeout(Duration::from_secs(120))
        .expect("the test server started")
}

/// How often the suite's dispatchers look for due retries.
pub const DISPATCH_INTERVAL: Duration = Duration::from_millis(200);

/// Makes sure something runs the periodic dispatch passes that carry webhook retries. In-process,
/// the harness's dispatcher loop does. A live deployment is driven the way production is, by a
/// scheduler calling the operator dispatch route (`POST /api/v1/webhooks/dispatch`), here every
/// [`DISPATCH_INTERVAL`] from a thread that lives as long as the test binary.
pub fn drive_retries() {
    static SCHEDULER: OnceLock<()> = OnceLock::new();
    if harness().in_process {
        return;
    }
    SCHEDULER.get_or_init(|| {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            runtime.block_on(async {
                let http = reqwest::Client::new();
                loop {
                    let reply = http
                        .post(format!("{}/api/v1/webhooks/dispatch", harness().base_url))
                        .bearer_auth(&harness().operator_token)
                        .send()
                        .await;
                    // Not an assertion: a panic here would stop retries for every later test.
                    match reply {
                        Ok(reply) if reply.status().is_success() => {}
                        Ok(reply) => eprintln!("dispatch route answered {}", reply.status()),
                        Err(error) => eprintln!("dispatch route unreachable: {error}"),
                    }
                    tokio::time::sleep(DISPATCH_INTERVAL).await;
                }
            });
        });
    });
}

/// Starts a server for `config` on a loopback port of the current runtime and returns its URL.
/// It dispatches no webhooks: [`start_dispatcher`] starts a dispatcher.
pub async fn start_server(config: Config) -> String {
    start_server_with(config, KeyValue::memory()).await
}

/// An app for `config` with an in-process key-value store, as a server or a worker process builds it.
pub fn app_for(config: Config) -> std::sync::Arc<App> {
    std::sync::Arc::new(App::new(config, KeyValue::memory()).expect("a valid app"))
}

/// Starts the native server's webhook dispatcher loop for `config` (periodic passes every
/// [`DISPATCH_INTERVAL`], and Redis wake-ups when `redis_url` is set); abort the handle to stop it.
pub fn start_dispatcher(config: Config) -> tokio::task::JoinHandle<()> {
    tokio::spawn(crm::dispatcher::run(app_for(config), DISPATCH_INTERVAL))
}

/// A new database with every migration applied: its owner URL and its application URL.
pub async fn fresh_migrated_database() -> (String, String) {
    let database = fresh_database().await;
    let owner_url = format!("{} dbname={database}", cluster());
    crm::migrate::run(&owner_url)
        .await
        .expect("migrations apply to a fresh database");
    (
        owner_url,
        format!("{} dbname={database} user=crm_app", cluster()),
    )
}

/// A server with its webhook dispatcher and job worker sharing one app, as `crm serve` runs
/// them: the server's commits wake them in-process.
pub async fn start_server_with_dispatcher(config: Config) -> String {
    let app = app_for(config);
    tokio::spawn(crm::dispatcher::run(app.clone(), DISPATCH_INTERVAL));
    tokio::spawn(crm::jobs::run(app.clone(), DISPATCH_INTERVAL));
    serve_app(app).await
}

/// As [`start_server`], with the key-value store `kv`.
pub async fn start_server_with(config: Config, kv: KeyValue) -> String {
    serve_app(std::sync::Arc::new(
        App::new(config, kv).expect("a valid app"),
    ))
    .await
}

async fn serve_app(app: std::sync::Arc<App>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("a bound address");
    tokio::spawn(crm::server::serve(
        listener,
        app,
        crm::server::ClientTimeouts::default(),
        std::future::pending(),
    ));
    format!("http://{address}")
}

/// Starts the local PostgreSQL and Redis the way `infra/scripts/dev` does (infra/scripts/services.sh)
/// when they are installed but not running, once per test binary. With `CRM_TEST_PG` naming
/// another cluster, nothing is started.
fn ensure_local_services() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        if std::env::var_os("CRM_TEST_PG").is_some() {
            return;
        }
        let reachable = |port: u16| {
            std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_millis(500),
            )
            .is_ok()
        };
        if reachable(5432) && reachable(6379) {
            return;
        }
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let started = std::process::Command::new("bash")
            .current_dir(root)
            .args([
                "-c",
                "source infra/scripts/services.sh && ensure_postgres 127.0.0.1 5432 && ensure_redis",
            ])
            .status()
            .is_ok_and(|status| status.success());
        assert!(
            started,
            "the HTTP suite needs PostgreSQL 15+ on 127.0.0.1:5432 (user postgres, trust auth) and \
             Redis on 127.0.0.1:6379: install them (apt-get install postgresql redis-server) or \
             point CRM_TEST_PG at a cluster"
        );
    });
}

/// Creates `crm_test_<unix seconds>_<random>`, dropping leftovers of runs older than a day.
pub async fn fresh_database() -> String {
    ensure_local_services();
    let admin = crm::connect(&format!("{} dbname=postgres", cluster()))
        .await
        .expect("the test cluster");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    for row in admin
        .query(
            "select datname from pg_database where datname like 'crm\\_test\\_%'",
            &[],
        )
        .await
        .expect("listing databases")
    {
        let name: String = row.get(0);
        let created: Option<u64> = name.split('_').nth(2).and_then(|s| s.parse().ok());
        if created.is_some_and(|created| created + 86_400 < now) {
            // Best effort: another run may be dropping it too.
            let _ignored = admin
                .batch_execute(&format!("drop database if exists \"{name}\""))
                .await;
        }
    }
    let name = format!("crm_test_{now}_{:08x}", rand::random::<u32>());
    admin
        .batch_execute(&format!("create database \"{name}\""))
        .await
        .expect("creating the test database");
    name
}

/// An owner connection to the harness database.
pub async fn owner_db() -> tokio_postgres::Client {
    crm::connect(&harness().owner_url)
        .await
        .expect("owner connection")
}

/// A connection as the application role, inside a transaction set to `tenant` (as every request's
/// transaction is): for proving what row-level security and the grants let the application do.
pub async fn app_session(tenant: TenantId) -> tokio_postgres::Client {
    let app = crm::connect(&harness().app_url)
        .await
        .expect("connecting as crm_app");
    app.batch_execute("begin").await.expect("begin");
    app.execute(
        "select set_config('app.tenant_id', $1, true)",
        &[&tenant.to_string()],
    )
    .await
    .expect("setting the tenant");
    app
}

/// The tables of the `public` schema of the database `db` is connected to, by name.
pub async fn public_tables(db: &tokio_postgres::Client) -> Vec<String> {
    db.query(
        "select tablename::text from pg_tables where schemaname = 'public' order by 1",
        &[],
    )
    .await
    .expect("listing tables")
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// How many rows of `table` belong to `tenant` (read as the owner, past RLS).
pub async fn count_rows(table: &str, tenant: TenantId) -> i64 {
    owner_db()
        .await
        .query_one(
            &format!("select count(*) from {table} where tenant_id = $1"),
            &[&tenant.as_uuid()],
        )
        .await
        .unwrap_or_else(|e| panic!("counting {table}: {e}"))
        .get(0)
}

/// A tenant made for one test, and a client acting for it.
pub struct TestTenant {
    pub id: TenantId,
}

impl TestTenant {
    /// A new tenant whose phone numbers default to `region`.
    pub async fn create(region: &str) -> Self {
        Self::create_in(&harness().owner_url, region).await
    }

    /// A new tenant in the database at `owner_url` (for tests with a database of their own).
    pub async fn create_in(owner_url: &str, region: &str) -> Self {
        let id = crm::tenants::create(owner_url, "Test tenant", region)
            .await
            .expect("creating a tenant");
        Self { id }
    }

    pub fn token(&self, scopes: &str) -> String {
        self.token_as("user-test", scopes)
    }

    /// A token of this tenant for the principal `subject`.
    pub fn token_as(&self, subject: &str, scopes: &str) -> String {
        crm_platform::auth::issue_hs256_token(
            &harness().jwt,
            subject,
            self.id,
            scopes,
            Duration::from_secs(600),
        )
        .expect("a test token")
    }

    /// Changes this tenant's settings, as `crm tenant set` does.
    pub async fn set(&self, changes: crm::tenants::TenantUpdate<'_>) {
        crm::tenants::update(&harness().owner_url, self.id, changes)
            .await
            .expect("updating tenant settings");
    }

    /// Makes `If-Match` required (or not) for this tenant.
    pub async fn require_if_match(&self, required: bool) {
        self.set(crm::tenants::TenantUpdate {
            require_if_match: Some(required),
            ..Default::default()
        })
        .await;
    }

    /// Overrides this tenant's rate limits, as `crm tenant set --rate-limits` does.
    pub async fn set_rate_limits(&self, overrides: &str) {
        self.set(crm::tenants::TenantUpdate {
            rate_limits: Some(overrides),
            ..Default::default()
        })
        .await;
    }

    /// A client with read and write scopes for contacts.
    pub fn client(&self) -> TestClient {
        TestClient::new(Some(self.token("contacts:read contacts:write")))
    }
}

/// Sends requests to the harness's base URL.
pub struct TestClient {
    http: reqwest::Client,
    token: Option<String>,
    /// Another server than the harness's.
    base_url: Option<String>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `errors[].field` pointers of a problem body.
    pub fn error_fields(&self) -> Vec<String> {
        self.json()["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl TestClient {
    pub fn new(token: Option<String>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
            token,
            base_url: None,
        }
    }

    /// A client of the server at `base_url`.
    pub fn at(base_url: &str, token: Option<String>) -> Self {
        Self {
            base_url: Some(base_url.to_owned()),
            ..Self::new(token)
        }
    }

    pub fn anonymous() -> Self {
        Self::new(None)
    }

    /// A request to `path` with this client's bearer token.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(
            method,
            format!(
                "{}{path}",
                self.base_url.as_deref().unwrap_or(&harness().base_url)
            ),
        );
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub async fn send(&self, builder: reqwest::RequestBuilder) -> Reply {
        let response = builder.send().await.expect("the server answers");
        Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.expect("a readable body"),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.request(Method::GET, path)).await
    }

    /// A request with a JSON body.
    pub async fn send_json(&self, method: Method, path: &str, body: &Value) -> Reply {
        self.send(self.request(method, path).json(body)).await
    }

    /// A POST whose body is sent exactly as given, with `content_type`.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: &str) -> Reply {
        self.send(
            self.request(Method::POST, path)
                .header("content-type", content_type)
                .body(body.to_owned()),
        )
        .await
    }

    pub async fn post_contact(&self, body: &Value) -> Reply {
        self.send(self.request(Method::POST, "/api/v1/contacts").json(body))
            .await
    }

    /// A JSON Merge Patch of a contact, with `If-Match` when given.
    pub async fn patch_contact(&self, id: &str, patch: &Value, if_match: Option<&str>) -> Reply {
        let mut request = self
            .request(Method::PATCH, &format!("/api/v1/contacts/{id}"))
            .header("content-type", "application/merge-patch+json")
            .body(patch.to_string());
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        self.send(request).await
    }

    /// Creates a contact and returns its id, failing the test when the create fails.
    pub async fn create_contact(&self, body: &Value) -> String {
        let reply = self.post_contact(body).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        reply.json()["id"].as_str().expect("an id").to_owned()
    }

    pub async fn get_contact(&self, id: &str) -> Reply {
        self.get(&format!("/api/v1/contacts/{id}")).await
    }
}
