//! Lists: definitions and static lists' members.

pub mod repository;
pub mod service;
