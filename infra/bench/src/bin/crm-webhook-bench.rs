//! `crm-webhook-bench`: webhook events delivered per second, end to end, against a running server
//! (`crm serve` with `SPIN_VARIABLE_WEBHOOK_LOCAL_HOSTS=127.0.0.1`): it subscribes N receivers on
//! loopback to `contact.created`, creates contacts through the API with C concurrent clients, and
//! counts until every delivery has arrived. It reports numbers; it asserts nothing.
//!
//! ```sh
//! crm-webhook-bench --base-url http://127.0.0.1:3900 --tenant ID --events 2000 --subscribers 1,10
//! ```

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "crm-webhook-bench")]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    base_url: String,
    /// A tenant of the server's database (`crm tenant create`).
    #[arg(long)]
    tenant: String,
    /// Contacts created per run (each is one `contact.created` event).
    #[arg(long, default_value_t = 2000)]
    events: usize,
    /// Subscriber counts to run with, comma-separated.
    #[arg(long, default_value = "1,10", value_delimiter = ',')]
    subscribers: Vec<usize>,
    /// Concurrent API clients creating contacts.
    #[arg(long, default_value_t = 16)]
    clients: usize,
}

/// When each event (contact id) was acknowledged by the API, and when its deliveries arrived.
#[derive(Default)]
struct Timeline {
    committed: HashMap<String, Instant>,
    arrivals: Vec<(String, Instant)>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (_, token) = crm_bench::tenant_token(
        &args.tenant,
        "webhook-bench",
        "contacts:write webhooks:manage",
    )?;
    let http = reqwest::Client::new();
    println!("| subscribers | events | deliveries | events/s | deliveries/s | p50 ms | p99 ms |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for &subscribers in &args.subscribers {
        let timeline = Arc::new(Mutex::new(Timeline::default()));
        let receiver = start_receiver(timeline.clone()).await?;
        let mut subscriptions = Vec::new();
        for index in 0..subscribers {
            let reply = http
                .post(format!("{}/api/v1/webhooks", args.base_url))
                .bearer_auth(&token)
                .json(&json!({"url": format!("http://{receiver}/hook/{index}"), "event_types": ["contact.created"]}))
                .send()
                .await?;
            if reply.status() != 201 {
                bail!(
                    "subscribing failed: {} {}",
                    reply.status(),
                    reply.text().await?
                );
            }
            let body: serde_json::Value = reply.json().await?;
            subscriptions.push(body["id"].as_str().unwrap_or_default().to_owned());
        }
        let started = Instant::now();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..args.clients {
            let (http, base, token, next, timeline) = (
                http.clone(),
                args.base_url.clone(),
                token.clone(),
                next.clone(),
                timeline.clone(),
            );
            let events = args.events;
            workers.push(tokio::spawn(async move {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < events {
                    let reply = http
                        .post(format!("{base}/api/v1/contacts"))
                        .bearer_auth(&token)
                        .json(&json!({"first_name": "Bench", "last_name": "Webhook"}))
                        .send()
                        .await?;
                    let at = Instant::now();
                    let body: serde_json::Value = reply.json().await?;
                    let id = body["id"].as_str().context("no contact id")?.to_owned();
                    timeline.lock().unwrap().committed.insert(id, at);
                }
                anyhow::Ok(())
            }));
        }
        for worker in workers {
            worker.await??;
        }
        let expected = args.events * subscribers;
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let arrived = timeline.lock().unwrap().arrivals.len();
            if arrived >= expected {
                break;
            }
            if Instant::now() > deadline {
                bail!("only {arrived} of {expected} deliveries arrived");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let mut latencies: Vec<f64> = {
            let timeline = timeline.lock().unwrap();
            timeline
                .arrivals
                .iter()
                .filter_map(|(id, at)| {
                    timeline
                        .committed
                        .get(id)
                        .map(|c| at.saturating_duration_since(*c).as_secs_f64() * 1000.0)
                })
                .collect()
        };
        latencies.sort_by(f64::total_cmp);
        let percentile = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0.0)
        };
        println!(
            "| {subscribers} | {} | {expected} | {:.0} | {:.0} | {:.1} | {:.1} |",
            args.events,
            args.events as f64 / elapsed,
            expected as f64 / elapsed,
            percentile(0.5),
            percentile(0.99)
        );
        for id in subscriptions {
            http.delete(format!("{}/api/v1/webhooks/{id}", args.base_url))
                .bearer_auth(&token)
                .send()
                .await?;
        }
    }
    Ok(())
}

/// A loopback receiver that answers 204 and notes which event arrived when.
async fn start_receiver(timeline: Arc<Mutex<Timeline>>) -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let timeline = timeline.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let timeline = timeline.clone();
                    async move {
                        let body = request.into_body().collect().await.map(|b| b.to_bytes());
                        let at = Instant::now();
                        let id = body
                            .ok()
                            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                            .and_then(|v| v["data"]["id"].as_str().map(str::to_owned))
                            .unwrap_or_default();
                        timeline.lock().unwrap().arrivals.push((id, at));
                        let mut response = hyper::Response::new(Full::new(Bytes::new()));
                        *response.status_mut() = hyper::StatusCode::NO_CONTENT;
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(address)
}
