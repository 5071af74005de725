//! The crates' modules form layers: no module of any crate reaches, through `crate::`,
//! `super::` or `self::` paths, a module that reaches it back, at any depth. A path to a name
//! a module re-exports (`crate::Name` through `lib.rs`, `crate::transport::Name` through
//! `transport/mod.rs`) counts as a path to the module that defines it. Read from the sources
//! (comments, strings and test modules left out), so a new cycle fails here before review
//! (ARCHITECTURE.md, "Invariants").

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path from its crate's root (`["transport", "accept"]`; empty for the root).
type Module = Vec<String>;

/// The crates of the workspace.
fn crates() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates");
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("src").is_dir())
        .collect();
    crates.sort();
    crates
}

/// Every `.rs` file under `src`, by the module it is.
fn modules(src: &Path) -> BTreeMap<Module, String> {
    let mut modules = BTreeMap::new();
    let mut pending = vec![src.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: Module = relative
                .components()
                .map(|c| c.as_os_str().to_str().unwrap().to_owned())
                .collect();
            if module
                .last()
                .is_some_and(|last| ["mod", "lib", "main"].contains(&last.as_str()))
            {
                module.pop();
            }
            let code = code_of(&std::fs::read_to_string(&path).unwrap());
            modules
                .entry(module)
                .and_modify(|text: &mut String| text.push_str(&code))
                .or_insert(code);
        }
    }
    modules
}

/// The code of a source file: comments gone, string and character literals emptied, test
/// modules (`#[cfg(test)] mod ... { ... }`) left out.
fn code_of(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut code = String::with_capacity(source.len());
    let mut at = 0;
    while at < bytes.len() {
        let rest = &source[at..];
        if rest.starts_with("//") {
            at += rest.find('\n').unwrap_or(rest.len());
        } else if let Some(comment) = rest.strip_prefix("/*") {
            at += comment.find("*/").map_or(rest.len(), |end| end + 4);
            code.push(' ');
        } else if let Some(length) = raw_string(source, at) {
            at += length;
            code.push_str("\"\"");
        } else if rest.starts_with('"') {
            let mut end = 1;
            while end < rest.len() && rest.as_bytes()[end] != b'"' {
                end += if rest.as_bytes()[end] == b'\\' { 2 } else { 1 };
            }
            at += end + 1;
            code.push_str("\"\"");
        } else if let Some(length) = char_literal(rest) {
            at += length;
            code.push_str("' '");
        } else {
            let c = rest.chars().next().unwrap();
            code.push(c);
            at += c.len_utf8();
        }
    }
    without_test_modules(&code)
}

/// The length of the raw string (`r"..."`, `r#"..."#`, `br"..."`) starting at `at`, if one does.
fn raw_string(source: &str, at: usize) -> Option<usize> {
    let rest = &source[at..];
    let before = source[..at].chars().next_back();
    if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let body = rest.strip_prefix('b').unwrap_or(rest).strip_prefix('r')?;
    let hashes = body.len() - body.trim_start_matches('#').len();
    let opening = body[hashes..].strip_prefix('"')?;
    let closing = format!("\"{}", "#".repeat(hashes));
    let end = opening.find(&closing)?;
    Some(rest.len() - opening.len() + end + closing.len())
}

/// The length of the character literal `rest` starts with (`'a'`, `'\''`, `'\u{1F600}'`), if
/// it does (a lifetime does not).
fn char_literal(rest: &str) -> Option<usize> {
    let body = rest.strip_prefix('\'')?;
    let mut chars = body.char_indices();
    let (_, first) = chars.next()?;
    let end = if first == '\\' {
        // The escaped character may itself be a quote (`'\''`).
        body.get(2..)?.find('\'')? + 2
    } else {
        chars.next().filter(|&(_, c)| c == '\'')?.0
    };
    Some(end + 2)
}

fn without_test_modules(code: &str) -> String {
    let mut code = code.to_owned();
    while let Some(start) = code.find("#[cfg(test)]") {
        let after = &code[start + "#[cfg(test)]".len()..];
        let trimmed = after.trim_start();
        if !trimmed.starts_with("mod ") {
            // A test-only item other than a module: only the attribute goes.
            code.replace_range(start..start + "#[cfg(test)]".len(), "");
            continue;
        }
        let Some(open) = after.find(['{', ';']) else {
            break;
        };
        if after[open..].starts_with(';') {
            // A test module in its own file (`mod tests;`): its declaration goes.
            code.replace_range(start..start + "#[cfg(test)]".len() + open + 1, "");
            continue;
        }
        let mut depth = 0;
        let mut end = code.len();
        for (offset, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = start + "#[cfg(test)]".len() + open + offset + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        code.replace_range(start..end, "");
    }
    code
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path in `code` that starts at `crate`, `super` or `self` (a `use` group spread into
/// its paths), as (base, segments).
fn paths(code: &str) -> Vec<(&'static str, Vec<String>)> {
    let mut found = Vec::new();
    for base in ["crate", "super", "self"] {
        let marker = format!("{base}::");
        for (at, _) in code.match_indices(&marker) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| is_ident(c) && c != '$') {
                continue;
            }
            let mut prefix = Vec::new();
            spread(&code[at + marker.len()..], &mut prefix, &mut |path| {
                found.push((base, path));
            });
        }
    }
    found
}

/// The paths `text` (what follows `...::`) holds: `a::b::C`, or a group `{a, b::{C, D}}`.
fn spread(text: &str, prefix: &mut Vec<String>, out: &mut impl FnMut(Vec<String>)) {
    let text = text.trim_start();
    if let Some(group) = text.strip_prefix('{') {
        let mut depth = 0;
        let mut item = String::new();
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    spread(&item, &mut prefix.clone(), out);
                    item.clear();
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        spread(&item, &mut prefix.clone(), out);
        return;
    }
    let name: String = text.chars().take_while(|&c| is_ident(c)).collect();
    if name.is_empty() {
        if !prefix.is_empty() {
            out(prefix.clone());
        }
        return;
    }
    prefix.push(name.clone());
    match text[name.len()..].strip_prefix("::") {
        Some(rest) => spread(rest, prefix, out),
        None => out(prefix.clone()),
    }
}

/// `segments` after `base`, seen from `module`, as a path from the crate's root.
fn absolute(module: &Module, base: &str, segments: &[String]) -> Module {
    let mut path = match base {
        "crate" => Vec::new(),
        "self" => module.clone(),
        _ => module[..module.len().saturating_sub(1)].to_vec(),
    };
    let mut segments = segments;
    while let Some(rest) = segments.strip_prefix(&["super".to_owned()][..]) {
        path.pop();
        segments = rest;
    }
    path.extend(segments.iter().cloned());
    path
}

/// One crate's modules and the modules each reaches by its paths.
fn dependencies(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let modules = modules(src);
    // (module, name) -> the path the module re-exports under that name.
    let mut exports: BTreeMap<(Module, String), Module> = BTreeMap::new();
    for (module, code) in &modules {
        for (at, _) in code.match_indices("use ") {
            let head = code[..at].trim_end();
            if !(head.ends_with("pub") || head.ends_with(')') && head.contains("pub(")) {
                continue;
            }
            let statement = &code[at + 4..];
            let statement = &statement[..statement.find(';').unwrap_or(statement.len())];
            let rooted = ["crate::", "super::", "self::"].iter().find_map(|base| {
                statement
                    .trim_start()
                    .strip_prefix(base)
                    .map(|r| (*base, r))
            });
            let (base, rest) = rooted.unwrap_or(("self::", statement));
            let mut prefix = Vec::new();
            spread(rest, &mut prefix, &mut |path| {
                let target = absolute(module, base.trim_end_matches(':'), &path);
                if let Some(name) = path.last() {
                    exports.insert((module.clone(), name.clone()), target);
                }
            });
        }
    }
    let resolve = |path: &Module| -> Option<Module> {
        let mut path = path.clone();
        for _ in 0..8 {
            let known = (0..=path.len())
                .rev()
                .find(|&k| modules.contains_key(&path[..k]))?;
            let module = path[..known].to_vec();
            match path.get(known) {
                Some(name) => match exports.get(&(module.clone(), name.clone())) {
                    Some(target) if *target != path[..=known] => path = target.clone(),
                    _ => return Some(module),
                },
                None => return Some(module),
            }
        }
        None
    };
    let mut uses: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, code) in &modules {
        let reached = uses.entry(module.clone()).or_default();
        for (base, segments) in paths(code) {
            let Some(target) = resolve(&absolute(module, base, &segments)) else {
                continue;
            };
            if target != *module && !target.is_empty() {
                reached.insert(target);
            }
        }
    }
    uses
}

fn reaches(uses: &BTreeMap<Module, BTreeSet<Module>>, from: &Module, to: &Module) -> bool {
    let mut seen = BTreeSet::new();
    let mut pending = vec![from.clone()];
    while let Some(module) = pending.pop() {
        for next in uses.get(&module).into_iter().flatten() {
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

/// The pairs of modules of `src` that reach each other.
fn cycles(src: &Path) -> BTreeSet<(String, String)> {
    let uses = dependencies(src);
    let mut cycles = BTreeSet::new();
    for (module, reached) in &uses {
        for other in reached {
            if reaches(&uses, other, module) {
                let (a, b) = (module.join("::"), other.join("::"));
                cycles.insert(if a < b { (a, b) } else { (b, a) });
            }
        }
    }
    cycles
}

#[test]
fn no_module_of_any_crate_reaches_one_that_reaches_it_back() {
    let crates = crates();
    assert!(crates.len() >= 10, "{crates:?}");
    let found: Vec<(String, BTreeSet<(String, String)>)> = crates
        .iter()
        .map(|dir| (dir.display().to_string(), cycles(&dir.join("src"))))
        .filter(|(_, cycles)| !cycles.is_empty())
        .collect();
    assert!(found.is_empty(), "import cycles: {found:#?}");
}

#[test]
fn the_nodes_leaves_stay_leaves() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/zicht-node/src");
    let uses = dependencies(&src);
    for leaf in ["settings", "policy", "disclosure", "secret"] {
        let reached: BTreeSet<&str> = uses
            .iter()
            .filter(|(module, _)| module.first().is_some_and(|m| m == leaf))
            .flat_map(|(_, reached)| reached.iter().map(|m| m[0].as_str()))
            .filter(|m| *m != leaf)
            .collect();
        assert!(
            reached
                .iter()
                .all(|m| ["policy", "disclosure", "secret"].contains(m)),
            "{leaf} uses {reached:?}"
        );
    }
}

/// The reader finds what it must: a cycle through a re-export at depth two, a path in a use
/// group, and not a path in a comment, a string or a test module.
#[test]
fn the_reader_sees_cycles_through_re_exports_and_groups_only_in_code() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("transport")).unwrap();
    let write = |name: &str, text: &str| std::fs::write(src.join(name), text).unwrap();
    write("lib.rs", "mod transport;\npub use transport::tls::Tls;\n");
    write(
        "transport/mod.rs",
        "pub(crate) mod accept;\npub(crate) mod tls;\n",
    );
    write(
        "transport/accept.rs",
        "use crate::{transport::{tls::Tls}};\npub struct Connections;\n",
    );
    write(
        "transport/tls.rs",
        "// crate::transport::accept\nconst A: &str = \"crate::transport::accept\";\n\
         const Q: char = '\\''; const B: &str = \"crate::transport::accept\";\n\
         #[cfg(test)]\nmod tests { use crate::transport::accept::Connections; }\n\
         #[cfg(test)]\nmod more;\npub struct Tls;\n",
    );
    assert!(cycles(src).is_empty());
    write(
        "transport/tls.rs",
        "pub struct Tls(crate::transport::Connections);\n",
    );
    write(
        "transport/mod.rs",
        "pub(crate) mod accept;\npub(crate) mod tls;\npub use accept::Connections;\n",
    );
    assert_eq!(
        cycles(src),
        BTreeSet::from([("transport::accept".to_owned(), "transport::tls".to_owned())])
    );
}
