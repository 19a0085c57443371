//! The documentation's relative links lead somewhere: every `[text](path)`
//! and `[text](#anchor)` in the repository's own Markdown names a file that
//! exists and, for an anchor, a heading that exists (GitHub's slugs).

use std::path::{Path, PathBuf};

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            // Dependencies and build output are not our documentation.
            if !matches!(name.as_str(), "node_modules" | "target" | ".git" | ".venv" | "gopath" | "corpus") {
                markdown_files(&path, out);
            }
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

/// GitHub's heading anchor: lowercase, punctuation dropped, spaces to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if !in_code && line.starts_with('#') {
            out.push(slug(line.trim_start_matches('#')));
        }
    }
    out
}

fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].to_string());
        }
    }
    out
}

#[test]
fn relative_links_resolve() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    assert!(files.iter().any(|f| f.ends_with("README.md")), "the checker found no README");
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for link in links(&text) {
            if link.starts_with("http://") || link.starts_with("https://") || link.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = link.split_once('#').unwrap_or((link.as_str(), ""));
            let target = if path.is_empty() { file.clone() } else { file.parent().unwrap().join(path) };
            if !target.exists() {
                broken.push(format!("{}: {link} (no such file)", file.display()));
                continue;
            }
            if !anchor.is_empty() && target.extension().is_some_and(|e| e == "md") {
                let text = std::fs::read_to_string(&target).unwrap();
                if !anchors(&text).contains(&anchor.to_string()) {
                    broken.push(format!("{}: {link} (no such heading)", file.display()));
                }
            }
        }
    }
    assert!(checked > 0, "no relative link was checked");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn slugs_follow_github() {
    assert_eq!(
        slug(" JWKS issuers (Auth0, Supabase, any OpenID provider)"),
        "jwks-issuers-auth0-supabase-any-openid-provider"
    );
    assert_eq!(slug(" Netlify signed proxy (`x-nf-sign`)"), "netlify-signed-proxy-x-nf-sign");
}

/// Every key of the config model, as `section.key`, `list[].key` or
/// `section.map.<name>.key`.
fn schema_keys(node: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    let Some(props) = node.get("properties").and_then(|p| p.as_object()) else { return };
    for (k, v) in props {
        let items = v.get("items");
        if v.get("properties").is_some() {
            schema_keys(v, &format!("{prefix}{k}."), out);
        } else if let Some(items) = items.filter(|i| i.get("properties").is_some()) {
            schema_keys(items, &format!("{prefix}{k}[]."), out);
        } else if let Some(map) = v.get("additionalProperties").filter(|a| a.get("properties").is_some()) {
            schema_keys(map, &format!("{prefix}{k}.<name>."), out);
        } else {
            out.push(format!("{prefix}{k}"));
        }
    }
}

/// docs/configuration.md names every key the reader accepts: in full
/// (`` `server.grpc_addr` ``), or as a sibling on a row that names its
/// section (`` `issuers[].secret` / `secret_file` ``).
#[test]
fn the_configuration_reference_is_complete() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/configuration.md")).unwrap();
    let mut keys = Vec::new();
    schema_keys(&authgate::config::schema(), "", &mut keys);
    assert!(keys.len() > 100, "the schema walk found {} keys", keys.len());
    let missing: Vec<&String> = keys
        .iter()
        .filter(|key| {
            let (section, leaf) = key.rsplit_once('.').unwrap_or(("", key.as_str()));
            let full = format!("`{key}`");
            let sibling = format!("`{leaf}`");
            let section = format!("`{section}.");
            // jwks and caller issuers share the issuers' keys.
            let as_issuer = key.replace("caller_issuers[].", "issuers[].");
            !doc.contains(&full)
                && !doc.contains(&format!("`{as_issuer}`"))
                && !doc.lines().any(|l| {
                    (l.contains(&section) || l.contains(&section.replace("caller_issuers[]", "issuers[]")))
                        && (l.contains(&sibling) || l.contains(&format!("/ `{leaf}`")))
                })
        })
        .collect();
    assert!(missing.is_empty(), "docs/configuration.md lacks: {missing:?}");
}
