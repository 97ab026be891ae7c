//! Structured logs through `tracing`, the same on both hosts: one `request` span per HTTP request
//! (request id, method, route pattern, then tenant, principal, status and latency) and one
//! `dispatch` span per webhook dispatch pass; every event inside carries its span's fields.
//!
//! Lines go to stderr: JSON, one object per line, unless stderr is a terminal (a developer's
//! `crm serve`), where they are readable text. Under Spin, stderr is the component's log, which
//! `spin up` writes to `.spin/logs/` and a platform collects. `RUST_LOG` filters (default `info`;
//! natively only, Spin does not pass the environment to components).

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the subscriber once per process (per instance on Spin); later calls do nothing, and a
/// process that installed its own subscriber (a test) keeps it.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        let _already_set = if std::io::stderr().is_terminal() {
            builder.compact().with_target(false).try_init()
        } else {
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_target(false)
                .with_ansi(false)
                .try_init()
        };
    });
}
