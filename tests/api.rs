//! The API's own checks, with buf (from npm, tests/buf): `proto/` passes
//! buf's STANDARD lint, and breaks nothing against the committed baseline
//! image of the released API (`proto/baseline/authgate-v1.binpb`; a
//! deliberate, reviewed change to the contract rebuilds it with `buf build
//! -o proto/baseline/authgate-v1.binpb`).

mod common;

use common::repo_root;
use std::process::Command;

fn buf() -> Command {
    let bin = repo_root().join("tests/buf/node_modules/.bin/buf");
    assert!(bin.exists(), "{} missing: run scripts/node-env.sh", bin.display());
    let mut c = Command::new(bin);
    // buf keeps a cache; keep it out of the developer's home.
    c.env("BUF_CACHE_DIR", std::env::temp_dir().join("authgate-buf-cache"));
    c
}

fn run(mut c: Command) -> (bool, String) {
    let out = c.output().expect("buf");
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

#[test]
fn proto_passes_lint_and_breaks_nothing() {
    let root = repo_root();
    let mut lint = buf();
    lint.current_dir(&root).arg("lint");
    let (ok, report) = run(lint);
    assert!(ok, "buf lint: {report}");
    let mut breaking = buf();
    breaking.current_dir(&root).args(["breaking", "--against", "proto/baseline/authgate-v1.binpb"]);
    let (ok, report) = run(breaking);
    assert!(ok, "buf breaking: {report}");
}

/// The breaking check is real: renumbering a field of a copy fails it.
#[test]
fn a_renumbered_field_is_caught() {
    let root = repo_root();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("proto/authgate/v1");
    std::fs::create_dir_all(&copy).unwrap();
    let text = std::fs::read_to_string(root.join("proto/authgate/v1/auth.proto")).unwrap();
    assert!(text.contains("  string subject = 1;"));
    std::fs::write(
        copy.join("auth.proto"),
        text.replacen("  string subject = 1;", "  string subject = 99;", 1),
    )
    .unwrap();
    std::fs::copy(root.join("buf.yaml"), dir.path().join("buf.yaml")).unwrap();
    let mut breaking = buf();
    breaking
        .current_dir(dir.path())
        .args(["breaking", "--against"])
        .arg(root.join("proto/baseline/authgate-v1.binpb"));
    let (ok, report) = run(breaking);
    assert!(!ok, "a renumbered field passed: {report}");
    assert!(report.contains("subject"), "{report}");
}

/// Every service, rpc, message, enum and field of the proto has a comment
/// (on the line before, or after it on its line): the proto is the API's
/// reference.
#[test]
fn every_declaration_is_documented() {
    let text = std::fs::read_to_string(repo_root().join("proto/authgate/v1/auth.proto")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut checked = 0;
    let mut bare = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let s = line.trim();
        let declaration = ["service ", "rpc ", "message ", "enum "].iter().any(|k| s.starts_with(k))
            || (s.ends_with(';')
                && s.contains(" = ")
                && !s.starts_with("option ")
                && !s.starts_with("REASON_"));
        if !declaration {
            continue;
        }
        checked += 1;
        let previous = if i > 0 { lines[i - 1].trim() } else { "" };
        if !previous.starts_with("//") && !s.contains("//") {
            bare.push(format!("{}: {s}", i + 1));
        }
    }
    assert!(checked > 80, "only {checked} declarations found");
    assert!(bare.is_empty(), "undocumented:\n{}", bare.join("\n"));
}
