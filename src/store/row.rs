//! What a user row holds, what changes it, and the one rule both backends
//! apply to decide whether a change writes anything.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// A point in time as the store writes it: UTC, microseconds, fixed width
/// (`2026-11-27T21:04:38.123456Z`), so text comparison is time order
/// (SQLite) and PostgreSQL reads it as `timestamptz`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp(String);

impl Stamp {
    /// Parses RFC 3339 with any offset (GoTrue writes Go's `time.Time`).
    pub fn parse(text: &str) -> Option<Self> {
        OffsetDateTime::parse(text, &Rfc3339).ok().map(Self::from_time)
    }

    /// The current time.
    pub fn now() -> Self {
        Self::from_time(OffsetDateTime::now_utc())
    }

    fn from_time(t: OffsetDateTime) -> Self {
        let t = t.to_offset(UtcOffset::UTC);
        Self(format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.microsecond()
        ))
    }

    /// `ago` before now.
    pub fn before(ago: std::time::Duration) -> Self {
        Self::from_time(OffsetDateTime::now_utc() - ago)
    }

    /// A time in seconds since the epoch (`None` when out of range).
    pub fn from_unix(secs: i64) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp(secs).ok().map(Self::from_time)
    }

    /// Seconds since the epoch.
    pub fn unix(&self) -> Option<i64> {
        OffsetDateTime::parse(&self.0, &Rfc3339).ok().map(|t| t.unix_timestamp())
    }

    /// Wraps text the store itself wrote (already normalised).
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The Netlify events GoTrue sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `validate`: a signup, before the confirmation mail.
    Validate,
    /// `signup`: the address is confirmed (or autoconfirm, or a first
    /// external login).
    Signup,
    /// `login`.
    Login,
    /// `usermodified`: an admin update.
    UserModified,
    /// `userdeleted`: the user is gone at Netlify.
    UserDeleted,
}

impl EventKind {
    /// Parses the body's `event`.
    pub fn parse(v: &str) -> Option<Self> {
        Some(match v {
            "validate" => Self::Validate,
            "signup" => Self::Signup,
            "login" => Self::Login,
            "usermodified" => Self::UserModified,
            "userdeleted" => Self::UserDeleted,
            _ => return None,
        })
    }

    /// The event name (metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validate => "validate",
            Self::Signup => "signup",
            Self::Login => "login",
            Self::UserModified => "usermodified",
            Self::UserDeleted => "userdeleted",
        }
    }
}

/// The Netlify-owned columns of a row (never `roles` or `claims`).
#[derive(Debug, Clone, PartialEq)]
pub struct NetlifyFields {
    /// The configured issuer name.
    pub issuer: String,
    /// Netlify's user id (`sub`).
    pub subject: String,
    /// `email`.
    pub email: String,
    /// `app_metadata.provider`.
    pub provider: String,
    /// `app_metadata` as received.
    pub app_metadata: Map<String, Value>,
    /// `user_metadata` as received.
    pub user_metadata: Map<String, Value>,
    /// `created_at` at Netlify.
    pub created_at: Option<Stamp>,
    /// `confirmed_at`.
    pub confirmed_at: Option<Stamp>,
    /// `last_sign_in_at`.
    pub last_sign_in_at: Option<Stamp>,
    /// `updated_at`: orders events. `None` for rows made from a verified
    /// token (tokens carry no `updated_at`).
    pub updated_at: Option<Stamp>,
}

impl NetlifyFields {
    /// Only who the user is: the rest empty (a deletion, a row about to be
    /// filled from a token).
    pub fn bare(issuer: &str, subject: &str) -> Self {
        Self {
            issuer: issuer.to_string(),
            subject: subject.to_string(),
            email: String::new(),
            provider: String::new(),
            app_metadata: Map::new(),
            user_metadata: Map::new(),
            created_at: None,
            confirmed_at: None,
            last_sign_in_at: None,
            updated_at: None,
        }
    }
}

/// Largest `id` accepted from a webhook body.
const MAX_ID_BYTES: usize = 255;

impl NetlifyFields {
    /// Reads a GoTrue user object (a webhook body's `user`, or hosted
    /// Identity's `/user` answer). `None` names what is missing or wrong.
    pub fn from_gotrue_user(issuer: &str, user: &Map<String, Value>) -> Result<Self, &'static str> {
        let subject = match user.get("id") {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_ID_BYTES => s.clone(),
            _ => return Err("user.id must be a non-empty string"),
        };
        let object = |name| match user.get(name) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(_) => Err("app_metadata and user_metadata must be objects"),
        };
        let app_metadata = object("app_metadata")?;
        let user_metadata = object("user_metadata")?;
        let stamp = |name| match user.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Stamp::parse(s).map(Some).ok_or("a user timestamp is not RFC 3339"),
            Some(_) => Err("a user timestamp is not a string"),
        };
        let updated_at = stamp("updated_at")?;
        if updated_at.is_none() {
            return Err("user.updated_at is required (it orders events)");
        }
        Ok(Self {
            issuer: issuer.to_string(),
            subject,
            email: user.get("email").and_then(Value::as_str).unwrap_or_default().to_string(),
            provider: app_metadata.get("provider").and_then(Value::as_str).unwrap_or_default().to_string(),
            app_metadata,
            user_metadata,
            created_at: stamp("created_at")?,
            confirmed_at: stamp("confirmed_at")?,
            last_sign_in_at: stamp("last_sign_in_at")?,
            updated_at,
        })
    }
}

/// One change to apply to the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A Netlify event (webhook), or hosted Identity's `/user` answer
    /// (`UserModified`) or its 404 (`UserDeleted`).
    Event(EventKind, NetlifyFields),
    /// A granted request saw this user (a just-in-time row).
    Seen(NetlifyFields),
}

impl Change {
    /// The fields the change carries.
    pub fn fields(&self) -> &NetlifyFields {
        match self {
            Self::Event(_, f) | Self::Seen(f) => f,
        }
    }
}

/// What is already stored for a user, as far as [`decide`] needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Existing {
    /// `deleted_at` is set.
    pub deleted: bool,
    /// `netlify_updated_at`.
    pub updated_at: Option<Stamp>,
}

/// What a change writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// A new row with the Netlify fields.
    Insert,
    /// A new row marked deleted (a deletion of a user never seen: its id
    /// must not come back).
    InsertDeleted,
    /// Replace the Netlify fields (never `roles`/`claims`) and
    /// `last_seen_at`.
    UpdateNetlify,
    /// Only `last_seen_at`.
    Touch,
    /// Set `deleted_at`.
    MarkDeleted,
    /// Nothing: an older or equal event, or the user is deleted.
    Nothing,
}

/// The one rule: deletion is final; among events, `updated_at` orders
/// (older changes nothing, equal is a no-op); a token's view fills a row
/// only until an event has described the user.
pub fn decide(existing: Option<&Existing>, change: &Change) -> Write {
    match (existing, change) {
        (Some(e), _) if e.deleted => Write::Nothing,
        (None, Change::Event(EventKind::UserDeleted, _)) => Write::InsertDeleted,
        (Some(_), Change::Event(EventKind::UserDeleted, _)) => Write::MarkDeleted,
        (None, _) => Write::Insert,
        (Some(e), Change::Event(_, f)) => match (&e.updated_at, &f.updated_at) {
            (None, _) => Write::UpdateNetlify,
            (Some(old), Some(new)) if new > old => Write::UpdateNetlify,
            _ => Write::Nothing,
        },
        (Some(e), Change::Seen(_)) if e.updated_at.is_none() => Write::UpdateNetlify,
        (Some(_), Change::Seen(_)) => Write::Touch,
    }
}

/// A whole row, as `authgate users show` prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    /// The Netlify-owned columns.
    pub netlify: NetlifyFields,
    /// `roles`, owned by the app: `None` when it has set none.
    pub roles: Option<Vec<String>>,
    /// `claims`, owned by the app.
    pub claims: Option<Map<String, Value>>,
    /// `first_seen_at`.
    pub first_seen_at: Stamp,
    /// `last_seen_at`.
    pub last_seen_at: Stamp,
    /// `deleted_at`.
    pub deleted_at: Option<Stamp>,
}

impl UserRow {
    /// The row as JSON (`authgate users show|list`), column names as in the
    /// table.
    pub fn to_json(&self) -> Value {
        let s = |v: &Option<Stamp>| v.as_ref().map(|s| s.as_str().to_string());
        let n = &self.netlify;
        serde_json::json!({
            "issuer": n.issuer,
            "subject": n.subject,
            "email": n.email,
            "provider": n.provider,
            "app_metadata": n.app_metadata,
            "user_metadata": n.user_metadata,
            "roles": self.roles,
            "claims": self.claims,
            "netlify_created_at": s(&n.created_at),
            "netlify_confirmed_at": s(&n.confirmed_at),
            "netlify_last_sign_in_at": s(&n.last_sign_in_at),
            "netlify_updated_at": s(&n.updated_at),
            "first_seen_at": self.first_seen_at.as_str(),
            "last_seen_at": self.last_seen_at.as_str(),
            "deleted_at": s(&self.deleted_at),
        })
    }
}

/// What [`crate::store::Backend::apply`] did, and what the webhook answers
/// from.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The write [`decide`] chose.
    pub write: Write,
    /// The row's app-owned roles after the change.
    pub roles: Option<Vec<String>>,
    /// The row is deleted.
    pub deleted: bool,
}

/// One row of the change feed: which user (or table) changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRow {
    /// Position in the feed (unique, increasing by insertion, not by commit).
    pub seq: i64,
    /// The table that changed.
    pub table: String,
    /// The row's issuer, when the table has one.
    pub issuer: Option<String>,
    /// The row's subject (users only).
    pub subject: Option<String>,
    /// The row's id (revocations only).
    pub row_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(updated: Option<&str>) -> NetlifyFields {
        NetlifyFields { updated_at: updated.and_then(Stamp::parse), ..NetlifyFields::bare("i", "s") }
    }

    #[test]
    fn stamps_normalise_offsets_and_order_as_text() {
        let a = Stamp::parse("2026-11-27T22:00:00+01:00").unwrap();
        assert_eq!(a.as_str(), "2026-11-27T21:00:00.000000Z");
        let b = Stamp::parse("2026-11-27T21:00:00.5Z").unwrap();
        assert!(b > a);
        assert!(Stamp::parse("yesterday").is_none());
    }

    #[test]
    fn the_rule_table() {
        let t1 = "2026-01-01T00:00:00Z";
        let t2 = "2026-01-02T00:00:00Z";
        let live = |u: Option<&str>| Existing { deleted: false, updated_at: u.and_then(Stamp::parse) };
        let deleted = Existing { deleted: true, updated_at: Stamp::parse(t1) };
        let event = |k, u| Change::Event(k, fields(u));
        let cases: Vec<(&str, Option<Existing>, Change, Write)> = vec![
            ("first event inserts", None, event(EventKind::Signup, Some(t1)), Write::Insert),
            (
                "newer event updates",
                Some(live(Some(t1))),
                event(EventKind::Login, Some(t2)),
                Write::UpdateNetlify,
            ),
            (
                "equal event is a no-op",
                Some(live(Some(t1))),
                event(EventKind::Login, Some(t1)),
                Write::Nothing,
            ),
            (
                "older event changes nothing",
                Some(live(Some(t2))),
                event(EventKind::UserModified, Some(t1)),
                Write::Nothing,
            ),
            (
                "an event fills a token-made row",
                Some(live(None)),
                event(EventKind::Login, Some(t1)),
                Write::UpdateNetlify,
            ),
            (
                "deletion of an unknown user leaves a tombstone",
                None,
                event(EventKind::UserDeleted, Some(t1)),
                Write::InsertDeleted,
            ),
            (
                "deletion marks",
                Some(live(Some(t2))),
                event(EventKind::UserDeleted, Some(t1)),
                Write::MarkDeleted,
            ),
            ("nothing resurrects", Some(deleted.clone()), event(EventKind::Signup, Some(t2)), Write::Nothing),
            (
                "a deletion twice is a no-op",
                Some(deleted.clone()),
                event(EventKind::UserDeleted, Some(t2)),
                Write::Nothing,
            ),
            ("a token never resurrects", Some(deleted), Change::Seen(fields(None)), Write::Nothing),
            ("a token makes a row", None, Change::Seen(fields(None)), Write::Insert),
            (
                "a token refreshes a token-made row",
                Some(live(None)),
                Change::Seen(fields(None)),
                Write::UpdateNetlify,
            ),
            (
                "a token only touches an event-made row",
                Some(live(Some(t1))),
                Change::Seen(fields(None)),
                Write::Touch,
            ),
        ];
        for (what, existing, change, want) in cases {
            assert_eq!(decide(existing.as_ref(), &change), want, "{what}");
        }
    }

    #[test]
    fn gotrue_user_is_read_strictly() {
        let user = |v: Value| v.as_object().unwrap().clone();
        let ok = user(serde_json::json!({
            "id": "u1", "email": "a@example.com", "app_metadata": {"provider": "email", "roles": ["x"]},
            "user_metadata": {}, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-02T00:00:00Z",
            "confirmed_at": null
        }));
        let f = NetlifyFields::from_gotrue_user("i", &ok).unwrap();
        assert_eq!((f.subject.as_str(), f.provider.as_str()), ("u1", "email"));
        for (what, bad) in [
            ("no id", serde_json::json!({"updated_at": "2026-01-02T00:00:00Z"})),
            ("no updated_at", serde_json::json!({"id": "u"})),
            ("bad time", serde_json::json!({"id": "u", "updated_at": "soon"})),
            (
                "metadata not an object",
                serde_json::json!({"id": "u", "updated_at": "2026-01-02T00:00:00Z", "app_metadata": []}),
            ),
        ] {
            assert!(NetlifyFields::from_gotrue_user("i", &user(bad)).is_err(), "{what}");
        }
    }
}
