//! The module tree is layered: a module uses only the layers below it, so
//! the import graph between top-level modules has no cycle, and no source
//! file outgrows a reading.
//!
//! Every `crate::<module>` path in `src/` counts, in a `use` or inline,
//! including `crate::{a, b}` groups and intra-doc links; unit tests (from `#[cfg(test)]` to the
//! end of a file, and `tests.rs` files) may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom first. `pb` (generated protobuf code) sits below everything.
const LAYERS: &[&str] =
    &["config", "obs", "core", "keys", "store", "verify", "gate", "adapters", "app", "cli"];

/// Longest source file, in lines (unit tests included; `tests.rs` files and
/// generated code excepted).
const MAX_LINES: usize = 600;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its unit tests and line comments.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    // Doc comments stay: an intra-doc link is a dependency too.
    text.lines().map(keep).collect::<Vec<_>>().join("\n")
}

/// A line without its plain comment; doc comments stay whole.
fn keep(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with("///") || t.starts_with("//!") { line } else { line.split("//").next().unwrap_or("") }
}

/// The top-level modules a piece of code names through `crate::`.
fn used_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = code.as_bytes();
    let mut at = 0;
    while let Some(i) = code[at..].find("crate::") {
        let start = at + i + "crate::".len();
        at = start;
        if bytes.get(start) == Some(&b'{') {
            // A group: every top-level name in it, nested groups skipped.
            let mut depth = 0;
            let mut item = String::new();
            for c in code[start..].chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => {
                        out.extend(first_ident(&item));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 1 => {
                        out.extend(first_ident(&item));
                        item.clear();
                    }
                    _ if depth == 1 => item.push(c),
                    _ => {}
                }
            }
        } else {
            out.extend(first_ident(&code[start..]));
        }
    }
    out
}

fn first_ident(s: &str) -> Option<String> {
    let s = s.trim_start();
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
    (end > 0).then(|| s[..end].to_string())
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files.iter().filter(|f| !f.ends_with("tests.rs")) {
        let rel = file.strip_prefix(&root).unwrap();
        let module = rel.iter().next().unwrap().to_string_lossy().trim_end_matches(".rs").to_string();
        let text = std::fs::read_to_string(file).unwrap();
        let used = used_modules(&code(&text));
        graph
            .entry(module.clone())
            .or_default()
            .extend(used.into_iter().filter(|m| *m != module && m != "self"));
    }
    graph
}

#[test]
fn each_module_uses_only_the_layers_below_it() {
    let graph = graph();
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut wrong = Vec::new();
    for (module, used) in &graph {
        if module == "lib" || module == "main" {
            continue;
        }
        // Generated code and its two hand-written messages: below
        // everything, so they use nothing of the crate.
        if module == "pb" {
            wrong.extend(used.iter().map(|u| format!("`pb` uses `{u}`; it must stay below every layer")));
            continue;
        }
        let Some(own) = rank(module) else {
            wrong.push(format!("`{module}` is in no layer: add it to LAYERS"));
            continue;
        };
        for u in used.iter().filter(|u| *u != "pb") {
            match rank(u) {
                Some(r) if r < own => {}
                _ => wrong.push(format!("`{module}` uses `{u}`, which is not below it")),
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_every_form_of_path() {
    let code = code(
        "use crate::a::B;\nfn f() { crate::b::c(); }\nuse crate::{c, d::{E, F}};\n// crate::commented\n/// see [`crate::e::F`]\n#[cfg(test)]\nmod tests { use crate::z; }",
    );
    let want: BTreeSet<String> = ["a", "b", "c", "d", "e"].iter().map(|s| s.to_string()).collect();
    assert_eq!(used_modules(&code), want);
}

#[test]
fn no_source_file_is_over_the_limit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let long: Vec<String> = files
        .iter()
        .filter(|f| !f.ends_with("tests.rs"))
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let lines = text.lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}
