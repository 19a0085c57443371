//! Revocations: entries of `authgate_revocations`, the deleted users of
//! `authgate_users`, and the in-memory index every decision checks.

use std::collections::{HashMap, HashSet};

/// What an entry refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationKind {
    /// Every token of a subject (optionally of one issuer) issued before a
    /// time, or ever.
    Subject,
    /// The token with this `jti`.
    Jti,
    /// The token whose SHA-256 this is (a stolen token without `jti`).
    TokenHash,
    /// Every token of an issuer issued before a time (a leaked secret).
    Issuer,
}

impl RevocationKind {
    /// The `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subject => "subject",
            Self::Jti => "jti",
            Self::TokenHash => "token_hash",
            Self::Issuer => "issuer",
        }
    }

    /// Reads the `kind` column.
    pub fn parse(v: &str) -> Option<Self> {
        Some(match v {
            "subject" => Self::Subject,
            "jti" => Self::Jti,
            "token_hash" => Self::TokenHash,
            "issuer" => Self::Issuer,
            _ => return None,
        })
    }

    /// Every kind (metrics).
    pub const ALL: [RevocationKind; 4] = [Self::Subject, Self::Jti, Self::TokenHash, Self::Issuer];
}

/// One row of `authgate_revocations`: the entry as it was written, and
/// what the database added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// `id`.
    pub id: i64,
    /// `created_at` (seconds).
    pub created_at: i64,
    /// Every other column.
    pub entry: NewRevocation,
}

impl Revocation {
    /// The entry as JSON (`authgate revocations list`).
    pub fn to_json(&self) -> serde_json::Value {
        let e = &self.entry;
        serde_json::json!({
            "id": self.id,
            "kind": e.kind.as_str(),
            "issuer": e.issuer,
            "subject": e.subject,
            "jti": e.jti,
            "token_hash": e.token_hash,
            "issued_before": e.issued_before,
            "expires_at": e.expires_at,
            "reason": e.reason,
            "created_by": e.created_by,
            "created_at": self.created_at,
        })
    }
}

/// A revocation entry as written (`id` and `created_at` come from the
/// database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRevocation {
    /// What it refuses.
    pub kind: RevocationKind,
    /// `issuer`: `None` = any issuer (subject, jti).
    pub issuer: Option<String>,
    /// `subject` (kind subject).
    pub subject: Option<String>,
    /// `jti` (kind jti).
    pub jti: Option<String>,
    /// `token_hash`: lowercase hex SHA-256 of the exact token.
    pub token_hash: Option<String>,
    /// `issued_before` (seconds since the epoch): tokens issued at or
    /// after it pass; `None` refuses every token (subject, issuer).
    pub issued_before: Option<i64>,
    /// `expires_at` (seconds): collected after it; `None` never.
    pub expires_at: Option<i64>,
    /// `reason`.
    pub reason: String,
    /// `created_by`.
    pub created_by: String,
}

/// What a decision knows of a verified token, for the check.
#[derive(Debug, Clone, Copy)]
pub struct TokenFacts<'a> {
    /// The configured issuer name.
    pub issuer: &'a str,
    /// `sub`.
    pub subject: &'a str,
    /// `jti`, when the token has one.
    pub jti: Option<&'a str>,
    /// `iat`, or `exp − access_token_ttl` for tokens without one.
    pub issued_at: i64,
    /// The token itself (hashed only when a token-hash entry exists).
    pub token: &'a str,
}

/// A scoped "before" rule: (issuer or any, issued before or always, id).
type Rule = (Option<String>, Option<i64>, i64);

/// The active revocations and deleted users, indexed for the request path.
#[derive(Debug, Default)]
pub struct RevocationIndex {
    by_id: HashMap<i64, Revocation>,
    subjects: HashMap<String, Vec<Rule>>,
    issuers: HashMap<String, Vec<Rule>>,
    jtis: HashMap<String, Vec<Rule>>,
    hashes: HashMap<[u8; 32], i64>,
    /// `issuer\0subject` of users marked deleted.
    deleted: HashSet<String>,
}

fn user_key(issuer: &str, subject: &str) -> String {
    format!("{issuer}\0{subject}")
}

fn decode_hash(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Lowercase hex SHA-256 of a token: the `token_hash` column.
pub fn token_hash(token: &str) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl RevocationIndex {
    /// Adds or replaces an entry.
    pub fn upsert(&mut self, r: Revocation) {
        self.remove(r.id);
        let (id, e) = (r.id, &r.entry);
        let rule = (e.issuer.clone(), e.issued_before, id);
        match e.kind {
            RevocationKind::Subject => {
                if let Some(s) = &e.subject {
                    self.subjects.entry(s.clone()).or_default().push(rule);
                }
            }
            RevocationKind::Issuer => {
                if let Some(i) = &e.issuer {
                    self.issuers.entry(i.clone()).or_default().push(rule);
                }
            }
            RevocationKind::Jti => {
                if let Some(j) = &e.jti {
                    self.jtis.entry(j.clone()).or_default().push(rule);
                }
            }
            RevocationKind::TokenHash => {
                if let Some(h) = e.token_hash.as_deref().and_then(decode_hash) {
                    self.hashes.insert(h, id);
                }
            }
        }
        self.by_id.insert(r.id, r);
    }

    /// Removes an entry, if present.
    pub fn remove(&mut self, id: i64) {
        let Some(r) = self.by_id.remove(&id) else { return };
        let drop_rule = |map: &mut HashMap<String, Vec<Rule>>, key: Option<&String>| {
            if let Some(k) = key
                && let Some(rules) = map.get_mut(k)
            {
                rules.retain(|(_, _, i)| *i != id);
                if rules.is_empty() {
                    map.remove(k);
                }
            }
        };
        let e = &r.entry;
        match e.kind {
            RevocationKind::Subject => drop_rule(&mut self.subjects, e.subject.as_ref()),
            RevocationKind::Issuer => drop_rule(&mut self.issuers, e.issuer.as_ref()),
            RevocationKind::Jti => drop_rule(&mut self.jtis, e.jti.as_ref()),
            RevocationKind::TokenHash => {
                if let Some(h) = e.token_hash.as_deref().and_then(decode_hash) {
                    self.hashes.remove(&h);
                }
            }
        }
    }

    /// Marks a user deleted, or not (the users table is the one record).
    pub fn set_deleted(&mut self, issuer: &str, subject: &str, deleted: bool) {
        let k = user_key(issuer, subject);
        if deleted {
            self.deleted.insert(k);
        } else {
            self.deleted.remove(&k);
        }
    }

    /// Active entries by kind, and deleted users (metrics).
    pub fn counts(&self) -> ([(RevocationKind, usize); 4], usize) {
        let mut counts = RevocationKind::ALL.map(|k| (k, 0));
        for r in self.by_id.values() {
            if let Some(c) = counts.iter_mut().find(|(k, _)| *k == r.entry.kind) {
                c.1 += 1;
            }
        }
        (counts, self.deleted.len())
    }

    /// The entry that refuses this token, if one does: `Some(kind)`, with
    /// `deleted_user` standing for a user marked deleted.
    pub fn refuses(&self, t: &TokenFacts<'_>) -> Option<&'static str> {
        let applies = |rules: Option<&Vec<Rule>>| {
            rules.is_some_and(|rules| {
                rules.iter().any(|(issuer, before, _)| {
                    issuer.as_deref().is_none_or(|i| i == t.issuer) && before.is_none_or(|b| t.issued_at < b)
                })
            })
        };
        if !self.deleted.is_empty() && self.deleted.contains(&user_key(t.issuer, t.subject)) {
            return Some("deleted_user");
        }
        if applies(self.subjects.get(t.subject)) {
            return Some(RevocationKind::Subject.as_str());
        }
        if applies(self.issuers.get(t.issuer)) {
            return Some(RevocationKind::Issuer.as_str());
        }
        if let Some(jti) = t.jti
            && applies(self.jtis.get(jti))
        {
            return Some(RevocationKind::Jti.as_str());
        }
        if !self.hashes.is_empty() {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, t.token.as_bytes());
            let mut key = [0u8; 32];
            key.copy_from_slice(digest.as_ref());
            if self.hashes.contains_key(&key) {
                return Some(RevocationKind::TokenHash.as_str());
            }
        }
        None
    }

    /// Every entry (a full reload replaces the index with these).
    pub fn replace_all(&mut self, entries: Vec<Revocation>, deleted: Vec<(String, String)>) {
        *self = Self::default();
        for r in entries {
            self.upsert(r);
        }
        for (i, s) in deleted {
            self.set_deleted(&i, &s, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        id: i64,
        kind: RevocationKind,
        issuer: Option<&str>,
        value: &str,
        before: Option<i64>,
    ) -> Revocation {
        Revocation {
            id,
            created_at: 0,
            entry: NewRevocation {
                kind,
                issuer: issuer.map(str::to_string),
                subject: (kind == RevocationKind::Subject).then(|| value.to_string()),
                jti: (kind == RevocationKind::Jti).then(|| value.to_string()),
                token_hash: (kind == RevocationKind::TokenHash).then(|| value.to_string()),
                issued_before: before,
                expires_at: None,
                reason: String::new(),
                created_by: String::new(),
            },
        }
    }

    #[test]
    fn the_check_table() {
        let mut idx = RevocationIndex::default();
        idx.upsert(entry(1, RevocationKind::Subject, None, "alice", Some(1000)));
        idx.upsert(entry(2, RevocationKind::Subject, Some("b"), "bob", None));
        idx.upsert(entry(3, RevocationKind::Jti, None, "j-1", None));
        idx.upsert(entry(4, RevocationKind::TokenHash, None, &token_hash("stolen"), None));
        idx.upsert(entry(5, RevocationKind::Issuer, Some("leaky"), "", Some(500)));
        idx.set_deleted("a", "carol", true);
        let t =
            |issuer, subject, jti, issued_at, token| TokenFacts { issuer, subject, jti, issued_at, token };
        let cases: Vec<(&str, TokenFacts<'_>, Option<&str>)> = vec![
            ("alice before T", t("a", "alice", None, 999, "x"), Some("subject")),
            ("alice after T passes", t("a", "alice", None, 1000, "x"), None),
            ("bob of issuer b, ever", t("b", "bob", None, 99999, "x"), Some("subject")),
            ("bob of another issuer passes", t("a", "bob", None, 1, "x"), None),
            ("that jti", t("a", "dave", Some("j-1"), 1, "x"), Some("jti")),
            ("another jti passes", t("a", "dave", Some("j-2"), 1, "x"), None),
            ("that exact token", t("a", "dave", None, 1, "stolen"), Some("token_hash")),
            ("another token passes", t("a", "dave", None, 1, "stolen2"), None),
            ("issuer-wide before T", t("leaky", "erin", None, 499, "x"), Some("issuer")),
            ("issuer-wide after T passes", t("leaky", "erin", None, 500, "x"), None),
            ("a deleted user", t("a", "carol", None, 99999, "x"), Some("deleted_user")),
            ("the same subject at another issuer passes", t("z", "carol", None, 1, "x"), None),
        ];
        for (what, facts, want) in cases {
            assert_eq!(idx.refuses(&facts), want, "{what}");
        }
        idx.remove(1);
        idx.remove(4);
        assert_eq!(
            idx.refuses(&t("a", "alice", None, 1, "stolen")),
            None,
            "removed entries no longer refuse"
        );
        assert_eq!(idx.counts().0[0], (RevocationKind::Subject, 1));
    }
}
