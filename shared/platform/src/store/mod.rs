//! The database: tenant-scoped transactions and reads, tenant settings, and the unit of work every
//! change goes through.

pub mod contacts;
pub mod db;
pub mod expected;
pub mod limits;
pub mod lists;
pub mod tenants;
pub mod unit_of_work;
