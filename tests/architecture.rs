//! The structure rules of docs/architecture.md, checked on the source:
//! no import circle between the modules of `src/`, and no long function
//! outside tests. Read as text (the `use` lines and `crate::`/`super::`
//! paths, the function bodies by their braces): a rough reading, but one
//! that fails when a circle or a long body comes back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest function body allowed outside tests (lines, signature to
/// closing brace).
const MAX_FUNCTION_LINES: usize = 120;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file below `src/`, as its module path (`configdb::feed`).
fn modules() -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                let mut p = prefix.to_vec();
                p.push(stem);
                walk(&path, &p, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let mut p = prefix.to_vec();
                if !matches!(stem.as_str(), "mod" | "lib" | "main") {
                    p.push(stem);
                }
                out.insert(p.join("::"), path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&src(), &[], &mut out);
    // Files that are compiled only for tests (`#[cfg(test)] mod x;`).
    let mut test_only = Vec::new();
    for (m, path) in &out {
        let text = std::fs::read_to_string(path).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for w in lines.windows(2) {
            if w[0] == "#[cfg(test)]"
                && let Some(name) = w[1]
                    .trim_start_matches("pub(crate) ")
                    .strip_prefix("mod ")
                    .and_then(|r| r.strip_suffix(';'))
            {
                test_only.push(if m.is_empty() {
                    name.to_owned()
                } else {
                    format!("{m}::{name}")
                });
            }
        }
    }
    for m in test_only {
        out.remove(&m);
    }
    out
}

/// The code of a file without its `#[cfg(test)]` modules (a test may use
/// anything) and without comments.
fn without_tests(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            // Skip the item that follows: to the end of its braces (or its `;`).
            let mut depth = 0i32;
            let mut opened = false;
            for l in lines.by_ref() {
                depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
                opened |= l.contains('{');
                if (opened && depth <= 0) || (!opened && l.trim_end().ends_with(';')) {
                    break;
                }
            }
            continue;
        }
        // Comments (and intra-doc links) are not imports.
        let code = match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// The modules a file names through `crate::a::b` or `super::x` paths,
/// resolved to the longest module path that exists.
fn imports(module: &str, text: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let here: Vec<&str> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").collect()
    };
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    for (start, prefix) in text
        .match_indices("crate::")
        .map(|(i, _)| (i, "crate::"))
        .chain(text.match_indices("super::").map(|(i, _)| (i, "super::")))
    {
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue;
        }
        let mut rest = &text[start + prefix.len()..];
        let mut base: Vec<&str> = here.clone();
        if prefix == "crate::" {
            base.clear();
        } else {
            // `super` is the parent module, once per `super::`.
            base.pop();
            while let Some(r) = rest.strip_prefix("super::") {
                base.pop();
                rest = r;
            }
        }
        let segs: Vec<&str> = rest
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .next()
            .unwrap_or("")
            .split("::")
            .filter(|s| !s.is_empty())
            .collect();
        let mut best = None;
        let mut path = base;
        if known.contains(&path.join("::")) {
            best = Some(path.join("::"));
        }
        for s in segs {
            path.push(s);
            let p = path.join("::");
            if known.contains(&p) {
                best = Some(p);
            }
        }
        if let Some(b) = best
            && b != module
            && !b.is_empty()
        {
            out.insert(b);
        }
    }
    out
}

/// A cycle in `edges`, if there is one (as the list of its nodes).
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_owned(), 1);
        stack.push(n.to_owned());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|s| s == m).unwrap();
                    let mut c = stack[from..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(m, edges, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0
            && let Some(c) = visit(n, edges, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

/// The import graph at one level: for the top level, each top-level module
/// (a directory under `src/` or a file) is a node; inside a directory
/// module, each of its files except `mod.rs` (a parent and its children
/// naming each other is how a module exports, not a circle).
fn graphs() -> Vec<(String, BTreeMap<String, BTreeSet<String>>)> {
    let mods = modules();
    let known: BTreeSet<String> = mods.keys().cloned().collect();
    let mut file_edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, path) in &mods {
        let text = without_tests(&std::fs::read_to_string(path).unwrap());
        file_edges.insert(m.clone(), imports(m, &text, &known));
    }
    let top = |m: &str| m.split("::").next().unwrap_or("").to_owned();
    let mut levels: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (from, tos) in &file_edges {
        for to in tos {
            let (tf, tt) = (top(from), top(to));
            if !tf.is_empty() && !tt.is_empty() && tf != tt {
                levels
                    .entry("crate".into())
                    .or_default()
                    .entry(tf.clone())
                    .or_default()
                    .insert(tt);
            }
            // Siblings inside one directory module.
            let parent = |m: &str| m.rsplit_once("::").map(|(p, _)| p.to_owned());
            if let (Some(pf), Some(pt)) = (parent(from), parent(to))
                && pf == pt
            {
                levels
                    .entry(pf)
                    .or_default()
                    .entry(from.clone())
                    .or_default()
                    .insert(to.clone());
            }
        }
    }
    levels.into_iter().collect()
}

#[test]
fn there_is_no_import_circle() {
    let mut circles = Vec::new();
    for (level, edges) in graphs() {
        if let Some(c) = cycle(&edges) {
            circles.push(format!("{level}: {}", c.join(" → ")));
        }
    }
    assert!(
        circles.is_empty(),
        "import circles (docs/architecture.md, \"No import circle\"):\n{}",
        circles.join("\n")
    );
}

/// The reader finds the circles it is meant to find.
#[test]
fn the_circle_reader_finds_a_circle() {
    let known: BTreeSet<String> = ["configdb", "configdb::feed", "configdb::redis", "config"]
        .map(String::from)
        .into();
    let feed = imports(
        "configdb::feed",
        "use super::redis::ConfigDbError;\nuse crate::config::Config;",
        &known,
    );
    assert_eq!(
        feed,
        ["config", "configdb::redis"].map(String::from).into(),
        "{feed:?}"
    );
    let redis = imports(
        "configdb::redis",
        "let f = super::feed::Feed::new();",
        &known,
    );
    let mut edges = BTreeMap::new();
    edges.insert("configdb::feed".to_owned(), feed);
    edges.insert("configdb::redis".to_owned(), redis);
    assert!(cycle(&edges).is_some());
}

/// Functions outside tests, with their length in lines.
fn functions(text: &str) -> Vec<(usize, String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim_start();
        let is_fn = [
            "fn ",
            "pub fn ",
            "pub(crate) fn ",
            "pub(super) fn ",
            "async fn ",
        ]
        .iter()
        .chain(&[
            "pub async fn ",
            "pub(crate) async fn ",
            "pub(super) async fn ",
        ])
        .chain(&["const fn ", "pub const fn "])
        .any(|p| t.starts_with(p));
        if !is_fn {
            i += 1;
            continue;
        }
        let name = t
            .split("fn ")
            .nth(1)
            .unwrap_or("")
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .next()
            .unwrap_or("")
            .to_owned();
        // To the end of the body: the first line where the braces opened
        // after the signature balance again (a `;` first: no body).
        let mut depth = 0i32;
        let mut opened = false;
        let mut j = i;
        while j < lines.len() {
            let l = lines[j];
            depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
            opened |= l.contains('{');
            if !opened && l.trim_end().ends_with(';') {
                break;
            }
            if opened && depth <= 0 {
                break;
            }
            j += 1;
        }
        if opened {
            out.push((i + 1, name, j - i + 1));
        }
        i = j + 1;
    }
    out
}

#[test]
fn no_function_outside_tests_is_longer_than_120_lines() {
    let mut long = Vec::new();
    for (m, path) in modules() {
        let text = without_tests(&std::fs::read_to_string(&path).unwrap());
        for (line, name, len) in functions(&text) {
            if len > MAX_FUNCTION_LINES {
                long.push(format!("{m}::{name} ({len} lines, near line {line})"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines (split them by what they check or build; \
         docs/architecture.md):\n{}",
        long.join("\n")
    );
}

/// The length reader counts a body from its signature to its closing brace.
#[test]
fn the_length_reader_counts_a_body() {
    let f = functions("fn a() {\n    let x = {\n        1\n    };\n}\nfn b();\n");
    assert_eq!(f, vec![(1, "a".to_owned(), 5)]);
}
