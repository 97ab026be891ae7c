//! The HTTP suite, one binary (one link, one harness: one in-process server and database, or one
//! live deployment): each module is a resource or concern, its tests run in parallel. What must
//! not share the deployment with other tests at the same time lives in `tests/exclusive/`.

mod audit;
mod auth;
mod batch;
mod calls;
mod contact_changes;
mod contact_lists;
mod contacts;
mod custom_fields;
mod documentation;
mod exports;
mod hostile_input;
mod idempotency;
mod imports;
mod limits_and_cache;
mod lists;
mod merges;
mod migrations;
mod notes;
mod ops;
mod preferences_and_consent;
mod relationships;
mod search;
mod seed;
mod services;
mod tags;
mod tenancy;
mod timeline;
mod webhooks;
