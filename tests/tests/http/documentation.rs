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
        serde_json::from_str(crm_platform::http::ops::OPENAPI_JSON).unwrap();
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
        [
            "audit",
            "calls",
            "contacts",
            "job-worker",
            "notes",
            "segments",
            "webhook-dispatcher",
            "webhooks"
        ]
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

/// How Spin picks among matching trigger routes: an exact route wins; otherwise the most specific,
/// compared segment by segment (literal over `:name` over a trailing `...`).
fn spin_route_rank(route: &str, path: &str) -> Option<Vec<u8>> {
    let route_segments: Vec<&str> = route.trim_start_matches('/').split('/').collect();
    let path_segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut rank = Vec::new();
    for (index, segment) in route_segments.iter().enumerate() {
        if *segment == "..." {
            rank.push(0);
            return Some(rank);
        }
        let actual = path_segments.get(index)?;
        if segment.starts_with(':') {
            rank.push(1);
        } else if segment == actual {
            rank.push(2);
        } else {
            return None;
        }
    }
    (route_segments.len() == path_segments.len()).then(|| {
        rank.push(3); // exact
        rank
    })
}

#[test]
fn spin_routes_every_path_to_the_component_that_serves_it() {
    let manifest: toml::Value = toml::from_str(&read("spin.toml")).unwrap();
    let triggers: Vec<(String, String)> = manifest["trigger"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["route"].as_str().unwrap().to_owned(),
                t["component"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let components = [
        ("contacts", crm_contacts::component_routes()),
        ("calls", crm_calls::routes()),
        ("notes", crm_notes::routes()),
        ("segments", crm_segments::routes()),
        ("audit", crm_audit::routes()),
        ("webhooks", crm_webhooks::routes()),
    ];
    for (component, router) in components {
        for route in router.routes() {
            let path = route
                .pattern
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        "x"
                    } else {
                        segment
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let chosen = triggers
                .iter()
                .filter_map(|(trigger, target)| {
                    spin_route_rank(trigger, &path).map(|rank| (rank, target))
                })
                .max_by(|a, b| a.0.cmp(&b.0))
                .map(|(_, target)| target.clone());
            assert_eq!(
                chosen.as_deref(),
                Some(component),
                "{} {} is routed elsewhere by spin.toml",
                route.method,
                route.pattern
            );
        }
    }
}

/// The platform's layers (its crate documentation lists them) import only the layers below them:
/// `http` → `app` → `edge` → `store` → `auth`, `config`, `logging`, `metering`, the error type.
#[test]
fn the_platform_layers_depend_one_way() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/platform/src");
    let above = |layer: &str| -> &[&str] {
        match layer {
            "store" => &[
                "crate::http",
                "crate::app",
                "crate::edge",
                "crate::auth",
                "crate::RequestContext",
                "crate::App",
            ],
            "edge" => &[
                "crate::http",
                "crate::app",
                "crate::auth",
                "crate::RequestContext",
                "crate::App",
            ],
            "app" => &["crate::http", "crate::RequestContext"],
            "base" => &[
                "crate::http",
                "crate::app",
                "crate::edge",
                "crate::store",
                "crate::RequestContext",
                "crate::App",
            ],
            _ => &[],
        }
    };
    let mut files = Vec::new();
    for (layer, path) in [
        ("app", "app.rs"),
        ("base", "auth.rs"),
        ("base", "config.rs"),
        ("base", "logging.rs"),
        ("base", "metering.rs"),
        ("base", "error.rs"),
        ("base", "document.rs"),
        ("base", "timer.rs"),
    ] {
        files.push((layer, root.join(path)));
    }
    for layer in ["store", "edge"] {
        let mut pending = vec![root.join(layer)];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    files.push((layer, path));
                }
            }
        }
    }
    assert!(files.len() > 10, "{files:?}");
    let mut violations = Vec::new();
    for (layer, path) in files {
        let source = std::fs::read_to_string(&path).unwrap();
        for (number, line) in source.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for forbidden in above(layer) {
                if line.contains(forbidden) {
                    violations.push(format!(
                        "{}:{}: {}",
                        path.display(),
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports from a layer above:\n{}",
        violations.join("\n")
    );
}

/// Resource services know nothing of HTTP: no request, no response, no header, no status.
#[test]
fn resource_services_know_nothing_of_http() {
    for service in [
        "components/contacts/src/service.rs",
        "components/contacts/src/relationships/service.rs",
        "components/contacts/src/preferences/service.rs",
        "components/contacts/src/consents/service.rs",
        "components/contacts/src/custom_fields/service.rs",
        "components/contacts/src/imports/service.rs",
        "components/contacts/src/export/service.rs",
        "components/calls/src/service.rs",
        "components/notes/src/service.rs",
        "shared/segments/src/tags/service.rs",
        "shared/segments/src/lists/service.rs",
        "components/webhooks/src/service.rs",
    ] {
        let source = read(service);
        for forbidden in [
            "crm_platform::http",
            "RequestContext",
            "ApiResponse",
            "StatusCode",
            "HeaderMap",
        ] {
            assert!(!source.contains(forbidden), "{service} uses {forbidden}");
        }
    }
}

/// Whether `ip` lies in `cidr` ("10.0.0.0/8", "::ffff:0:0/96").
fn in_range(cidr: &str, ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    let (network, prefix) = cidr.split_once('/').expect("a CIDR");
    let prefix: u32 = prefix.parse().expect("a prefix length");
    match (network.parse::<IpAddr>().expect("an address"), ip) {
        (IpAddr::V4(network), IpAddr::V4(ip)) => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            u32::from(network) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(network), IpAddr::V6(ip)) => {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            u128::from(network) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

#[test]
fn the_production_runtime_config_blocks_every_non_public_network_but_the_data_subnet() {
    let text = read("infra/runtime-config/production.toml");
    let config: toml::Value = text.parse().expect("valid TOML");
    let blocked: Vec<&str> = config["outbound_networking"]["block_networks"]
        .as_array()
        .expect("a block list")
        .iter()
        .map(|v| v.as_str().expect("a CIDR"))
        .collect();
    let kept = text
        .split("(keeping ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("the generated list says what it keeps");
    let is_blocked = |ip: std::net::IpAddr| blocked.iter().any(|cidr| in_range(cidr, ip));
    for probe in [
        "10.0.0.1",
        "10.0.2.0",
        "10.255.255.255",
        "127.0.0.1",
        "169.254.169.254",
        "172.31.255.255",
        "192.168.1.1",
        "100.64.0.1",
        "100.127.255.255",
        "198.18.0.1",
        "198.19.255.255",
        "240.0.0.1",
        "255.255.255.255",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fd00:ec2::254",
        "64:ff9b::a00:1",
        "64:ff9b::808:808",
        "::ffff:a00:1",
        "2002:a00:1::1",
    ] {
        let ip = probe.parse().unwrap();
        assert!(is_blocked(ip), "{probe} must be blocked");
    }
    for reachable in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
        assert!(
            !is_blocked(reachable.parse().unwrap()),
            "{reachable} is public"
        );
    }
    let data_subnet_host = kept.split('/').next().unwrap().parse().unwrap();
    assert!(
        in_range(kept, data_subnet_host) && !is_blocked(data_subnet_host),
        "the database and Redis subnet {kept} stays reachable"
    );
    let manifest = read("infra/deploy/spinkube/spinapp.yaml");
    assert!(
        manifest.contains("loadFromSecret: crm-runtime-config"),
        "SpinKube loads the same runtime config, blocking included"
    );
}
