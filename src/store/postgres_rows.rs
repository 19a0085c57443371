//! Reading PostgreSQL rows into the store's types: the column lists and
//! their decoding (timestamps come back as the store's fixed-width UTC
//! text, or as seconds).

use super::StoreError;
use super::revocations::{NewRevocation, Revocation, RevocationKind};
use super::row::{NetlifyFields, Stamp, UserRow};
use serde_json::Value;
use std::sync::LazyLock;
use tokio_postgres::Row;

pub(super) fn ts(col: &str) -> String {
    format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
}

pub(super) static COLUMNS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "issuer, subject, email, provider, app_metadata, user_metadata, roles, claims, {}, {}, {}, {}, {}, {}, {}",
        ts("netlify_created_at"),
        ts("netlify_confirmed_at"),
        ts("netlify_last_sign_in_at"),
        ts("netlify_updated_at"),
        ts("first_seen_at"),
        ts("last_seen_at"),
        ts("deleted_at")
    )
});

pub(super) const REVOCATION_COLUMNS: &str = "id, kind, issuer, subject, jti, token_hash, \
    extract(epoch FROM issued_before)::bigint, extract(epoch FROM expires_at)::bigint, reason, created_by, \
    extract(epoch FROM created_at)::bigint";

pub(super) fn read_revocation(r: &Row) -> Result<Revocation, tokio_postgres::Error> {
    let kind: String = r.try_get(1)?;
    Ok(Revocation {
        id: r.try_get(0)?,
        created_at: r.try_get(10)?,
        entry: NewRevocation {
            // The column's CHECK admits only the four kinds.
            kind: RevocationKind::parse(&kind).unwrap_or(RevocationKind::Subject),
            issuer: r.try_get(2)?,
            subject: r.try_get(3)?,
            jti: r.try_get(4)?,
            token_hash: r.try_get(5)?,
            issued_before: r.try_get(6)?,
            expires_at: r.try_get(7)?,
            reason: r.try_get(8)?,
            created_by: r.try_get(9)?,
        },
    })
}

pub(super) fn error(e: tokio_postgres::Error) -> StoreError {
    StoreError(format!("postgres: {e}"))
}

pub(super) fn roles(v: Option<Vec<Option<String>>>) -> Option<Vec<String>> {
    v.map(|r| r.into_iter().flatten().collect())
}

pub(super) fn read_row(r: &Row) -> Result<UserRow, tokio_postgres::Error> {
    let stamp = |i| r.try_get::<_, Option<String>>(i).map(|s| s.map(Stamp::from_stored));
    let object = |i| {
        r.try_get::<_, Option<Value>>(i).map(|v| match v {
            Some(Value::Object(m)) => Some(m),
            _ => None,
        })
    };
    Ok(UserRow {
        netlify: NetlifyFields {
            issuer: r.try_get(0)?,
            subject: r.try_get(1)?,
            email: r.try_get(2)?,
            provider: r.try_get(3)?,
            app_metadata: object(4)?.unwrap_or_default(),
            user_metadata: object(5)?.unwrap_or_default(),
            created_at: stamp(8)?,
            confirmed_at: stamp(9)?,
            last_sign_in_at: stamp(10)?,
            updated_at: stamp(11)?,
        },
        roles: roles(r.try_get(6)?),
        claims: object(7)?,
        first_seen_at: Stamp::from_stored(r.try_get(12)?),
        last_seen_at: Stamp::from_stored(r.try_get(13)?),
        deleted_at: stamp(14)?,
    })
}
