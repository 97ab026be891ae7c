//! The documents that describe the API agree with the code: every route is in the OpenAPI document
//! and every documented operation is routed; every variable is declared in spin.toml and the README.

use crm_platform::config::VARIABLES;
use std::collections::BTreeSet;
use std::path::Path;

fn read(relative: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(relative),
    )
    .unwrap_or_else(|e| panic!("{relative}: {e}"))
}

#[test]
fn every_route_is_documented_and_every_documented_operation_is_routed() {
    let routed: BTreeSet<(String, String)> = crm::server::router()
        .routes()
        .map(|route| {
            (
                route.method.as_str().to_lowercase(),
                route.pattern.to_owned(),
            )
        })
        .collect();
    let document: serde_json::Value =
        serde_json::from_str(crm_platform::ops::OPENAPI_JSON).unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.insert((method.clone(), path.clone()));
            }
        }
    }
    assert_eq!(routed, documented);
}

#[test]
fn every_variable_is_declared_in_spin_toml_for_every_component() {
    let manifest: toml::Value = toml::from_str(&read("spin.toml")).unwrap();
    let declared = manifest["variables"].as_table().unwrap();
    for variable in VARIABLES {
        let entry = declared
            .get(variable.name)
            .unwrap_or_else(|| panic!("{} is not declared in spin.toml", variable.name));
        match variable.default {
            None => assert_eq!(
                entry.get("required").and_then(|v| v.as_bool()),
                Some(true),
                "{}",
                variable.name
            ),
            Some(default) => assert_eq!(
                entry.get("default").and_then(|v| v.as_str()),
                Some(default),
                "{}",
                variable.name
            ),
        }
    }
    let components = manifest["component"].as_table().unwrap();
    assert_eq!(
        components.keys().cloned().collect::<BTreeSet<_>>(),
        ["audit", "calls", "contacts", "webhooks"]
            .map(String::from)
            .into()
    );
    for (name, component) in components {
        let mapped = component["variables"].as_table().unwrap();
        for variable in VARIABLES {
            assert_eq!(
                mapped.get(variable.name).and_then(|v| v.as_str()),
                Some(format!("{{{{ {} }}}}", variable.name).as_str()),
                "component {name} does not map {}",
                variable.name
            );
        }
        assert!(component["build"]["command"]
            .as_str()
            .unwrap()
            .contains("wasm32-wasip2"));
    }
}

#[test]
fn every_variable_is_documented_in_the_readme() {
    let readme = read("README.md");
    for variable in VARIABLES {
        assert!(
            readme.contains(&format!("| `{}` |", variable.name)),
            "README's configuration table lacks {}",
            variable.name
        );
    }
}
