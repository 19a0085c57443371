//! Where a config error is: `file:line:column` of the key it names, and a
//! "did you mean" for a misspelt key. The values themselves are read from a
//! `toml::Table`; this reads the same text once more as toml's spanned
//! document, only for positions.

use std::collections::HashMap;
use std::path::Path;
use toml::de::{DeTable, DeValue};

/// Byte offsets of every key path in a TOML document (`server.grpc_addr`,
/// `issuers[0].secret`, `edge.routes.admin.roles`).
pub(crate) struct KeyLocations {
    file: String,
    text: String,
    offsets: HashMap<String, usize>,
}

impl KeyLocations {
    /// Reads the positions of `text` (the contents of `file`).
    pub(crate) fn new(file: &Path, text: &str) -> Self {
        let mut offsets = HashMap::new();
        if let Ok(root) = DeTable::parse(text) {
            walk(root.get_ref(), "", &mut offsets);
        }
        Self { file: file.display().to_string(), text: text.to_owned(), offsets }
    }

    /// `file:line:column` of a byte offset (both 1-based).
    pub(crate) fn position(&self, offset: usize) -> String {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("{}:{line}:{column}", self.file)
    }

    /// `message`, prefixed with the position of the longest key path it
    /// names. A message about a value from the environment or a flag
    /// (`(from VAR)`) already says where it came from and is left alone.
    pub(crate) fn locate(&self, message: String) -> String {
        if message.contains("(from ") {
            return message;
        }
        let plain = without_entry_names(&message);
        let named = self
            .offsets
            .iter()
            .filter(|(path, _)| names_path(&plain, path))
            .max_by_key(|(path, _)| path.len());
        match named {
            Some((_, offset)) => format!("{}: {message}", self.position(*offset)),
            None => message,
        }
    }
}

/// The message with the names it gives array entries left out, so that
/// `issuers[0] (hosted).site_url` reads as the path `issuers[0].site_url`.
fn without_entry_names(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find("] (") {
        out.push_str(&rest[..=i]);
        let after = &rest[i + 1..];
        match after.find(')') {
            Some(end) => rest = &after[end + 1..],
            None => {
                rest = after;
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// True when `path` appears in `message` as a whole key path (not as the
/// start of a longer one).
fn names_path(message: &str, path: &str) -> bool {
    message.match_indices(path).any(|(i, _)| {
        let before = message[..i].chars().next_back();
        let after = message[i + path.len()..].chars().next();
        let part =
            |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '[' | '-'));
        !part(before) && !part(after)
    })
}

fn walk(table: &DeTable<'_>, prefix: &str, out: &mut HashMap<String, usize>) {
    for (key, value) in table {
        let name: &str = key.get_ref();
        let path = if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") };
        out.insert(path.clone(), key.span().start);
        match value.get_ref() {
            DeValue::Table(t) => walk(t, &path, out),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let DeValue::Table(t) = item.get_ref() {
                        let indexed = format!("{path}[{i}]");
                        out.insert(indexed.clone(), item.span().start);
                        walk(t, &indexed, out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The known key closest to a misspelt one (at most two edits, or one for
/// short keys), for "did you mean".
pub(crate) fn closest<'k>(unknown: &str, known: impl Iterator<Item = &'k str>) -> Option<&'k str> {
    let limit = if unknown.len() <= 4 { 1 } else { 2 };
    known.map(|k| (edit_distance(unknown, k), k)).filter(|(d, _)| *d <= limit).min().map(|(_, k)| k)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_key_paths() {
        let text = "[server]\ngrpc_adr = \"x\"\n\n[[issuers]]\nname = \"a\"\n[[issuers]]\n  secret = \"s\"\n";
        let locations = KeyLocations::new(Path::new("a.toml"), text);
        let cases = [
            (
                "a key in a table",
                "unknown key `server.grpc_adr`",
                "a.toml:2:1: unknown key `server.grpc_adr`",
            ),
            (
                "an indexed table's key",
                "issuers[1].secret: too short",
                "a.toml:7:3: issuers[1].secret: too short",
            ),
            ("a table", "server must be a table", "a.toml:1:2: server must be a table"),
            ("a named entry", "issuers[1] (b).secret: short", "a.toml:7:3: issuers[1] (b).secret: short"),
            (
                "from the environment",
                "log.level (from AUTHGATE_LOG_LEVEL): bad",
                "log.level (from AUTHGATE_LOG_LEVEL): bad",
            ),
            ("no key named", "no [[issuers]] configured", "no [[issuers]] configured"),
        ];
        for (description, message, want) in cases {
            assert_eq!(locations.locate(message.to_string()), want, "{description}");
        }
    }

    #[test]
    fn suggestions() {
        let known = ["grpc_addr", "http_addr", "max_entries", "roles"];
        assert_eq!(closest("grpc_adr", known.iter().copied()), Some("grpc_addr"));
        assert_eq!(closest("max_entires", known.iter().copied()), Some("max_entries"));
        assert_eq!(closest("role", known.iter().copied()), Some("roles"));
        assert_eq!(closest("colour", known.iter().copied()), None);
    }
}
