//! Tag and list changes, whoever makes them: the tag vocabulary and the tags a contact carries,
//! static lists' members and lists' definitions. The segments component serves them over HTTP; an
//! import attaches tags and adds list members through the same services (a component cannot link
//! another component's crate: each exports its own Spin handler). Nothing here knows HTTP.

pub mod lists;
pub mod tags;
