//! Tags: the vocabulary and the tags each contact carries.

pub mod repository;
pub mod service;
