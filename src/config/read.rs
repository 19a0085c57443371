//! Reading one TOML table at a time, every error collected and every
//! unknown key reported.

use super::{MIN_SECRET_BYTES, Secret, source};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::{Table, Value};

/// A log filter: comma-separated directives, each a level (`trace`,
/// `debug`, `info`, `warn`, `error`, `off`) or `target=level`. A bare word
/// that is no level (`verbose`) would be read by tracing as a target name
/// and silence every other log line, so it is an error.
pub(super) fn parse_log_filter(v: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    for directive in v.split(',').map(str::trim) {
        if !directive.contains('=') && !LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "`{directive}` is not a level (trace, debug, info, warn, error, off) or a `target=level` directive"
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(v).map(|_| v.to_string()).map_err(|e| e.to_string())
}

pub(super) fn parse_addr(v: &str) -> Result<SocketAddr, String> {
    v.parse().map_err(|_| "not a socket address like 127.0.0.1:8080".to_string())
}

pub(super) fn parse_duration(v: &str) -> Result<Duration, String> {
    humantime::parse_duration(v).map_err(|e| format!("not a duration like \"30s\": {e}"))
}

pub(super) fn parse_bounded(v: &str, min: usize, max: usize) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be an integer from {min} to {max}")),
    }
}

/// An upstream base URL: `https`, or `http` to a loopback host only (the
/// user's token travels in the request).
/// The upstream URL rule (https, or http to loopback only; no query,
/// fragment or credentials), for URLs learnt at run time (`jwks_uri`).
pub fn check_upstream_url(v: &str) -> Result<String, String> {
    parse_upstream_url(v)
}

pub(super) fn parse_upstream_url(v: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(v).map_err(|e| format!("not a URL: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err("must be https (http only to a loopback host): tokens travel in this request".into());
        }
        _ => return Err("must be an https URL".into()),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("must not carry a query, fragment or credentials".into());
    }
    Ok(url.as_str().to_string())
}

/// A secret from (highest first) `<ENV>`, `<ENV>_FILE`, `key`, `key_file`.
/// Setting both a value and a file at the same level is an error; so is a
/// secret shorter than [`MIN_SECRET_BYTES`]. A file's trailing newline is
/// dropped (Kubernetes Secrets made with `echo` carry one).
/// `Err(())` means a source was given but unusable (already reported).
pub(super) fn read_secret(
    r: &mut Reader<'_>,
    s: &mut Section<'_>,
    key: &str,
    env: &str,
) -> Result<Option<Secret>, ()> {
    let env_file = format!("{env}_FILE");
    let key_file = format!("{key}_file");
    let from_env = (r.env)(env);
    let from_env_file = (r.env)(&env_file);
    let inline = s.parsed(r, key, None, None, |v| Ok(v.to_string()));
    let file = s.parsed(r, &key_file, None, None, |v| Ok(PathBuf::from(v)));
    let label = s.label.clone();
    let (origin, value) = match (from_env, from_env_file, inline, file) {
        (Some(_), Some(_), _, _) => {
            r.errors.push(format!("{label}: both {env} and {env_file} are set"));
            return Err(());
        }
        (Some(v), None, _, _) => (env.to_string(), Ok(v.into_bytes())),
        (None, Some(p), _, _) => (env_file.clone(), r.read_file(Path::new(&p))),
        (None, None, Some(_), Some(_)) => {
            r.errors.push(format!("{label}: set {key} or {key_file}, not both"));
            return Err(());
        }
        (None, None, Some(v), None) => (key.to_string(), Ok(v.into_bytes())),
        (None, None, None, Some(p)) => (key_file.clone(), r.read_file(&p)),
        (None, None, None, None) => return Ok(None),
    };
    match value {
        Err(e) => {
            r.errors.push(format!("{label}: {origin}: {e}"));
            Err(())
        }
        Ok(bytes) if bytes.len() < MIN_SECRET_BYTES => {
            r.errors.push(format!("{label}: {origin} is shorter than {MIN_SECRET_BYTES} bytes"));
            Err(())
        }
        Ok(bytes) => Ok(Some(Secret::new(bytes))),
    }
}

pub(super) fn read_secret_file(path: &Path) -> Result<Vec<u8>, String> {
    let mut bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    while matches!(bytes.last(), Some(b'\n' | b'\r')) {
        bytes.pop();
    }
    Ok(bytes)
}

/// Collects errors while reading.
pub(super) struct Reader<'a> {
    pub(super) errors: Vec<String>,
    pub(super) env: &'a dyn Fn(&str) -> Option<String>,
    /// Every file read (config, secrets, keys), for `watch_interval`.
    pub(super) files: Vec<PathBuf>,
    /// `check-config --offline`: secret and key files are named, not read.
    pub(super) offline: bool,
    /// When set, every key asked for: (table path, key, kind), for the
    /// JSON Schema ([`super::schema`]).
    pub(super) schema: Option<Vec<(String, String, KeyKind)>>,
}

/// What a key holds, as the reader asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyKind {
    /// A string or a number, parsed further (addresses, durations, sizes).
    Scalar,
    Boolean,
    Strings,
    Table,
    ArrayOfTables,
    /// A table of free-form entries (`require_claims`, `role_scopes`).
    Map,
}

impl<'a> Reader<'a> {
    pub(super) fn new(env: &'a dyn Fn(&str) -> Option<String>, offline: bool) -> Self {
        Self { errors: Vec::new(), env, files: Vec::new(), offline, schema: None }
    }

    /// A secret or key file's bytes; offline, a placeholder that passes
    /// the length check (and no key is parsed offline).
    pub(super) fn read_file(&mut self, path: &Path) -> Result<Vec<u8>, String> {
        self.files.push(path.to_path_buf());
        if self.offline {
            return Ok(OFFLINE_PLACEHOLDER.to_vec());
        }
        read_secret_file(path)
    }

    fn record(&mut self, section: &str, key: &str, kind: KeyKind) {
        if let Some(schema) = &mut self.schema {
            schema.push((schema_path(section), key.to_string(), kind));
        }
    }
}

/// What an unread file holds offline.
const OFFLINE_PLACEHOLDER: &[u8] = b"[offline: file not read]";

/// A section label as a schema path: `issuers[2] (netlify)` → `issuers[]`,
/// `edge.routes.admin` → `edge.routes.*`.
fn schema_path(label: &str) -> String {
    let label = label.split(" (").next().unwrap_or(label);
    let mut out = String::new();
    let mut in_index = false;
    for c in label.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[]");
            }
            ']' => in_index = false,
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    match out.strip_prefix("edge.routes.") {
        Some(_) => "edge.routes.*".to_string(),
        None => out,
    }
}

/// One TOML table being read; remembers which keys were used so that
/// unknown keys (typos) are reported.
pub(super) struct Section<'t> {
    pub(super) label: String,
    pub(super) table: Option<&'t Table>,
    pub(super) used: BTreeSet<String>,
}

impl<'t> Section<'t> {
    pub(super) fn new(label: &str, table: Option<&'t Table>) -> Self {
        Self { label: label.to_string(), table, used: BTreeSet::new() }
    }

    pub(super) fn key(&self, key: &str) -> String {
        if self.label.is_empty() { key.to_string() } else { format!("{}.{key}", self.label) }
    }

    /// A free-form table (`require_claims`, `role_scopes`).
    pub(super) fn map(&mut self, r: &mut Reader<'_>, key: &str) -> Option<&'t Value> {
        r.record(&self.label, key, KeyKind::Map);
        self.get(key)
    }

    pub(super) fn get(&mut self, key: &str) -> Option<&'t Value> {
        self.used.insert(key.to_string());
        self.table.and_then(|t| t.get(key))
    }

    pub(super) fn table(&mut self, r: &mut Reader<'_>, key: &str) -> Option<&'t Table> {
        r.record(&self.label, key, KeyKind::Table);
        match self.get(key) {
            None => None,
            Some(Value::Table(t)) => Some(t),
            Some(_) => {
                r.errors.push(format!("{} must be a table", self.key(key)));
                None
            }
        }
    }

    pub(super) fn array_of_tables(&mut self, r: &mut Reader<'_>, key: &str) -> Vec<&'t Table> {
        r.record(&self.label, key, KeyKind::ArrayOfTables);
        match self.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| match v {
                    Value::Table(t) => Some(t),
                    _ => {
                        r.errors.push(format!("{} must be an array of tables ([[{key}]])", self.key(key)));
                        None
                    }
                })
                .collect(),
            Some(_) => {
                r.errors.push(format!("{} must be an array of tables ([[{key}]])", self.key(key)));
                Vec::new()
            }
        }
    }

    /// A scalar given as a flag, an env var or a TOML string/integer,
    /// parsed by `parse`; errors name the origin.
    pub(super) fn parsed<T>(
        &mut self,
        r: &mut Reader<'_>,
        key: &str,
        env: Option<&str>,
        flag: Option<&str>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        r.record(&self.label, key, KeyKind::Scalar);
        let from_toml = self.get(key);
        let full = self.key(key);
        let (origin, text) = if let Some(f) = flag {
            (format!("{full} (from flag)"), f.to_string())
        } else if let Some((var, v)) = env.and_then(|var| (r.env)(var).map(|v| (var, v))) {
            (format!("{full} (from {var})"), v)
        } else {
            match from_toml {
                None => return None,
                Some(Value::String(s)) => (full, s.clone()),
                Some(Value::Integer(i)) => (full, i.to_string()),
                Some(Value::Float(f)) => (full, f.to_string()),
                Some(other) => {
                    r.errors.push(format!(
                        "{full} has the wrong type: expected a string or a number, found {}",
                        other.type_str()
                    ));
                    return None;
                }
            }
        };
        parse(&text).map_err(|e| r.errors.push(format!("{origin}: {e}"))).ok()
    }

    pub(super) fn boolean(&mut self, r: &mut Reader<'_>, key: &str) -> Option<bool> {
        r.record(&self.label, key, KeyKind::Boolean);
        match self.get(key) {
            None => None,
            Some(Value::Boolean(b)) => Some(*b),
            Some(_) => {
                r.errors.push(format!("{} must be true or false", self.key(key)));
                None
            }
        }
    }

    pub(super) fn strings(&mut self, r: &mut Reader<'_>, key: &str) -> Option<Vec<String>> {
        r.record(&self.label, key, KeyKind::Strings);
        match self.get(key) {
            None => None,
            Some(Value::Array(items)) if items.iter().all(Value::is_str) => {
                Some(items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            }
            Some(_) => {
                r.errors.push(format!("{} must be an array of strings", self.key(key)));
                None
            }
        }
    }

    pub(super) fn finish(self, r: &mut Reader<'_>) {
        let Some(t) = self.table else { return };
        for k in t.keys().filter(|k| !self.used.contains(*k)) {
            let hint = match source::closest(k, self.used.iter().map(String::as_str)) {
                Some(known) => format!(" (did you mean `{known}`?)"),
                None => String::new(),
            };
            r.errors.push(format!("unknown key `{}`{hint}", self.key(k)));
        }
    }
}
