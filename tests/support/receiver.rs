//! A real webhook receiver on loopback: records every request, answers from a script (status,
//! delay, headers), notices when one `webhook-id` arrives while it is already being handled, and
//! verifies signatures with the Standard Webhooks algorithm (written here independently of the
//! code under test). Like the strictest receivers, it reads only the `content-length` bytes of a
//! body: a delivery sent chunked, without a length, arrives empty and fails verification.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub delay: Duration,
    pub headers: Vec<(String, String)>,
}

impl Answer {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            delay: Duration::ZERO,
            headers: Vec::new(),
        }
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header"))
    }

    pub fn id(&self) -> &str {
        self.header("webhook-id")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    script: VecDeque<Answer>,
    default: Option<Answer>,
    in_flight: HashMap<String, usize>,
    overlaps: usize,
}

#[derive(Clone)]
pub struct Receiver {
    address: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    /// Listens on a loopback port of the current runtime; answers 204 unless told otherwise.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let receiver = Self {
            address: listener.local_addr().expect("an address"),
            state: Arc::default(),
        };
        let state = receiver.state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| handle(state.clone(), request));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        receiver
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Answers the next requests with `answers`, in order, then with the default again.
    pub fn answer_next(&self, answers: impl IntoIterator<Item = Answer>) {
        self.lock().script.extend(answers);
    }

    /// Answers every request not scripted with `answer`.
    pub fn answer_always(&self, answer: Answer) {
        self.lock().default = Some(answer);
    }

    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// How many requests arrived while another one with the same `webhook-id` was in progress.
    pub fn overlaps(&self) -> usize {
        self.lock().overlaps
    }

    /// Waits until at least `count` requests have arrived (panics after `timeout`).
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} webhook request(s) within {timeout:?}, got {}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn handle(
    state: Arc<Mutex<State>>,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    // Read the body the way receivers that trust only `content-length` do (Python's http.server,
    // several serverless front doors): its declared length, none when it declares none.
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    let body = body.slice(..declared.min(body.len()));
    let id = parts
        .headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let answer = {
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        state.received.push(Received {
            path: parts.uri.path().to_owned(),
            headers: parts.headers.clone(),
            body,
            at: Instant::now(),
        });
        let in_flight = state.in_flight.entry(id.clone()).or_default();
        *in_flight += 1;
        if *in_flight > 1 {
            state.overlaps += 1;
        }
        let default = state.default.clone().unwrap_or(Answer::status(204));
        state.script.pop_front().unwrap_or(default)
    };
    tokio::time::sleep(answer.delay).await;
    if let Some(count) = state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .in_flight
        .get_mut(&id)
    {
        *count -= 1;
    }
    let mut response = hyper::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = http::StatusCode::from_u16(answer.status).expect("a status");
    for (name, value) in answer.headers {
        response.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            http::HeaderValue::from_str(&value).expect("a header value"),
        );
    }
    Ok(response)
}

/// Verifies `received` as Standard Webhooks 1.0 says a receiver must: some `v1,` signature of
/// `webhook-signature` equals the base64 HMAC-SHA256, keyed with the secret's base64-decoded bytes,
/// of `{webhook-id}.{webhook-timestamp}.{body}`, and the timestamp is within five minutes.
pub fn verify(secret: &str, received: &Received) -> bool {
    use hmac::{Hmac, Mac};
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .expect("a base64 secret");
    let timestamp = received.header("webhook-timestamp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    if (timestamp.parse::<i64>().expect("a unix timestamp") - now).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("a key");
    mac.update(format!("{}.{timestamp}.", received.id()).as_bytes());
    mac.update(&received.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    received
        .header("webhook-signature")
        .split(' ')
        .any(|signature| signature == expected)
}
