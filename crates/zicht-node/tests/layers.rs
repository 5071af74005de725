//! The node's modules form layers: no top-level module reaches, through `crate::` paths, a
//! module that reaches it back (ARCHITECTURE.md, "zicht-node"). Read from the sources, so a
//! new cycle fails here before review.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each top-level module of `src/` and the top-level modules its code (not its comments)
/// names as `crate::MODULE`.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut pending = vec![src.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path.strip_prefix(&src).unwrap();
            let first = relative.components().next().unwrap();
            let top = first.as_os_str().to_str().unwrap().trim_end_matches(".rs");
            if top == "lib" {
                continue; // the curated surface re-exports every layer
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let uses = modules.entry(top.to_owned()).or_default();
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (at, _) in line.match_indices("crate::") {
                    let name: String = line[at + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    let is_module = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
                    if is_module && name != top {
                        uses.insert(name);
                    }
                }
            }
        }
    }
    modules
}

fn reaches(modules: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut pending = vec![from.to_owned()];
    while let Some(module) = pending.pop() {
        for next in modules.get(&module).into_iter().flatten() {
            if next == to {
                return true;
            }
            if seen.insert(next.clone()) {
                pending.push(next.clone());
            }
        }
    }
    false
}

#[test]
fn no_module_of_the_node_imports_one_that_imports_it_back() {
    let modules = dependencies();
    assert!(modules.contains_key("services") && modules.contains_key("settings"));
    let cycles: Vec<(String, String)> = modules
        .iter()
        .flat_map(|(module, uses)| uses.iter().map(move |used| (module.clone(), used.clone())))
        .filter(|(module, used)| reaches(&modules, used, module))
        .collect();
    assert!(cycles.is_empty(), "import cycles: {cycles:?}");
    // The leaves stay leaves.
    for leaf in ["settings", "policy", "disclosure", "secret"] {
        let uses = &modules[leaf];
        assert!(
            uses.iter()
                .all(|u| ["policy", "disclosure", "secret"].contains(&u.as_str())),
            "{leaf} uses {uses:?}"
        );
    }
}
