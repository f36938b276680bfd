//! The source tree follows the data (the crate's module map in
//! `src/lib.rs`): shared types at the bottom, then the engine, the
//! settings, the sources, the sinks, the engine thread, the cluster, HTTP,
//! and the wiring and commands on top. Every `crate::` path a module names
//! outside its tests points to its own layer or one below, and within a
//! layer nothing goes round in a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each unit's layer: a unit may name units of its own layer or lower.
fn layer(unit: &str) -> Option<u8> {
    let top = unit.split("::").next()?;
    Some(match top {
        "event" | "util" | "health" | "metrics" | "auth" | "datadir" | "partition" => 0,
        "engine" => 1,
        "config" => 2,
        "source" => 3,
        "sink" => 4,
        "pipeline" => 5,
        "cluster" => 6,
        "http" => 7,
        "app" | "demo" | "replay" | "restore" => 8,
        _ => return None,
    })
}

/// The unit a file belongs to: its top module, or `source::x` / `sink::x`.
fn unit_of(rel: &Path) -> Option<String> {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    match parts.first()?.as_str() {
        "lib" | "main" => None,
        "source" | "sink" if parts.len() > 1 => Some(format!("{}::{}", parts[0], parts[1])),
        _ => Some(parts[0].clone()),
    }
}

/// The units a file's code (not its comments, not its tests) names.
fn named_units(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let mut units = BTreeSet::new();
    for line in code.lines() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        for (i, _) in line.match_indices("crate::") {
            let rest = &line[i + "crate::".len()..];
            let mut segments = rest.split("::").map(|s| {
                s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .next()
            });
            let Some(Some(first)) = segments.next() else {
                continue;
            };
            let unit = match (first, segments.next()) {
                ("source" | "sink", Some(Some(second))) if !second.is_empty() => {
                    format!("{first}::{second}")
                }
                _ => first.to_owned(),
            };
            units.insert(unit);
        }
    }
    units
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(unit) = unit_of(file.strip_prefix(&src).unwrap()) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let mut named = named_units(&text);
        named.remove(&unit);
        graph.entry(unit).or_default().extend(named);
    }
    graph
}

#[test]
fn every_module_has_a_layer_and_names_only_its_own_or_lower_ones() {
    let graph = graph();
    assert!(graph.contains_key("source::nats") && graph.contains_key("sink::store"));
    let mut wrong = Vec::new();
    for (unit, named) in &graph {
        let own = layer(unit).unwrap_or_else(|| panic!("{unit} has no layer in this test"));
        for other in named {
            match layer(other) {
                Some(l) if l <= own => {}
                Some(l) => wrong.push(format!("{unit} (layer {own}) names {other} (layer {l})")),
                None => wrong.push(format!("{unit} names {other}, which has no layer")),
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn no_modules_name_each_other_in_a_circle() {
    let graph = graph();
    // Depth-first search; a unit met again while still open closes a circle.
    fn visit<'a>(
        unit: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        open: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if done.contains(unit) {
            return None;
        }
        if let Some(at) = open.iter().position(|u| *u == unit) {
            let mut circle: Vec<String> = open[at..].iter().map(|u| u.to_string()).collect();
            circle.push(unit.to_owned());
            return Some(circle);
        }
        open.push(unit);
        for next in graph.get(unit).into_iter().flatten() {
            if graph.contains_key(next)
                && let Some(circle) = visit(next, graph, open, done)
            {
                return Some(circle);
            }
        }
        open.pop();
        done.insert(unit);
        None
    }
    let mut done = BTreeSet::new();
    for unit in graph.keys() {
        let circle = visit(unit, &graph, &mut Vec::new(), &mut done);
        assert!(circle.is_none(), "an import circle: {circle:?}");
    }
}

#[test]
fn the_reader_sees_paths_in_code_and_skips_comments_and_tests() {
    let text = "use crate::sink::store::Store;\n\
                // crate::http is only mentioned\n\
                fn f() { crate::util::backoff(); }\n\
                #[cfg(test)]\nmod tests {\n    use crate::app::Application;\n}\n";
    let named = named_units(text);
    assert_eq!(
        named.into_iter().collect::<Vec<_>>(),
        ["sink::store", "util"]
    );
}
