//! The store's schema, versioned, embedded in the binary. A migration is
//! applied once, in its own transaction, and recorded in
//! `authgate_schema_migrations`; released versions are never edited (a
//! change is a new version). The README's "User store" section documents
//! the tables as a contract.

/// One schema version.
pub struct Migration {
    /// Applied in increasing order.
    pub version: i32,
    /// What it does (recorded with it).
    pub description: &'static str,
    /// The statements.
    pub sql: &'static str,
}

/// PostgreSQL. Changes to the app-writable tables are recorded by
/// triggers in the writing transaction, with its transaction id (so the
/// feed reader can tell which rows may still commit), and announced with
/// `NOTIFY authgate_changes`.
pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        description: "users, signup allow-list, change feed",
        sql: r#"
CREATE TABLE authgate_users (
    issuer                  text        NOT NULL,
    subject                 text        NOT NULL,
    email                   text        NOT NULL DEFAULT '',
    provider                text        NOT NULL DEFAULT '',
    app_metadata            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    user_metadata           jsonb       NOT NULL DEFAULT '{}'::jsonb,
    roles                   text[],
    claims                  jsonb CHECK (claims IS NULL OR jsonb_typeof(claims) = 'object'),
    netlify_created_at      timestamptz,
    netlify_confirmed_at    timestamptz,
    netlify_last_sign_in_at timestamptz,
    netlify_updated_at      timestamptz,
    first_seen_at           timestamptz NOT NULL DEFAULT now(),
    last_seen_at            timestamptz NOT NULL DEFAULT now(),
    deleted_at              timestamptz,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX authgate_users_email ON authgate_users (lower(email));

CREATE TABLE authgate_signup_allow (
    issuer     text        NOT NULL,
    pattern    text        NOT NULL CHECK (pattern = lower(pattern) AND pattern LIKE '%@%'),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, pattern)
);

CREATE TABLE authgate_changes (
    seq        bigserial   PRIMARY KEY,
    xid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    table_name text        NOT NULL,
    issuer     text,
    subject    text,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX authgate_changes_xid ON authgate_changes (xid);
CREATE INDEX authgate_changes_at ON authgate_changes (at);

CREATE FUNCTION authgate_record_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO authgate_changes (table_name, issuer, subject)
        VALUES (TG_TABLE_NAME, to_jsonb(OLD) ->> 'issuer', to_jsonb(OLD) ->> 'subject');
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE'
        AND ((to_jsonb(NEW) ->> 'issuer') IS DISTINCT FROM (to_jsonb(OLD) ->> 'issuer')
          OR (to_jsonb(NEW) ->> 'subject') IS DISTINCT FROM (to_jsonb(OLD) ->> 'subject'))) THEN
        INSERT INTO authgate_changes (table_name, issuer, subject)
        VALUES (TG_TABLE_NAME, to_jsonb(NEW) ->> 'issuer', to_jsonb(NEW) ->> 'subject');
    END IF;
    PERFORM pg_notify('authgate_changes', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER authgate_users_changed AFTER INSERT OR DELETE ON authgate_users
    FOR EACH ROW EXECUTE FUNCTION authgate_record_change();
CREATE TRIGGER authgate_users_updated AFTER UPDATE ON authgate_users
    FOR EACH ROW WHEN (OLD.roles IS DISTINCT FROM NEW.roles OR OLD.claims IS DISTINCT FROM NEW.claims
        OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at OR OLD.email IS DISTINCT FROM NEW.email
        OR OLD.issuer IS DISTINCT FROM NEW.issuer OR OLD.subject IS DISTINCT FROM NEW.subject)
    EXECUTE FUNCTION authgate_record_change();
CREATE TRIGGER authgate_signup_allow_changed AFTER INSERT OR UPDATE OR DELETE ON authgate_signup_allow
    FOR EACH ROW EXECUTE FUNCTION authgate_record_change();
"#,
    },
    Migration {
        version: 2,
        description: "revocations",
        sql: r#"
CREATE TABLE authgate_revocations (
    id            bigserial   PRIMARY KEY,
    kind          text        NOT NULL CHECK (kind IN ('subject', 'jti', 'token_hash', 'issuer')),
    issuer        text,
    subject       text,
    jti           text,
    token_hash    text CHECK (token_hash IS NULL OR token_hash ~ '^[0-9a-f]{64}$'),
    issued_before timestamptz,
    expires_at    timestamptz,
    reason        text        NOT NULL DEFAULT '',
    created_by    text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'subject') = (subject IS NOT NULL)),
    CHECK ((kind = 'jti') = (jti IS NOT NULL)),
    CHECK ((kind = 'token_hash') = (token_hash IS NOT NULL)),
    CHECK (kind <> 'issuer' OR issuer IS NOT NULL)
);
CREATE INDEX authgate_revocations_expires ON authgate_revocations (expires_at);

ALTER TABLE authgate_changes ADD COLUMN row_id text;

CREATE FUNCTION authgate_record_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO authgate_changes (table_name, issuer, subject, row_id)
        VALUES (TG_TABLE_NAME, OLD.issuer, OLD.subject, OLD.id::text);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.id <> OLD.id) THEN
        INSERT INTO authgate_changes (table_name, issuer, subject, row_id)
        VALUES (TG_TABLE_NAME, NEW.issuer, NEW.subject, NEW.id::text);
    END IF;
    PERFORM pg_notify('authgate_changes', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER authgate_revocations_changed AFTER INSERT OR UPDATE OR DELETE ON authgate_revocations
    FOR EACH ROW EXECUTE FUNCTION authgate_record_revocation();
"#,
    },
];

/// SQLite. One writer at a time, so feed rows commit in `seq` order and a
/// plain `seq > last` read cannot skip one.
pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        description: "users, signup allow-list, change feed",
        sql: r#"
CREATE TABLE authgate_users (
    issuer                  TEXT NOT NULL,
    subject                 TEXT NOT NULL,
    email                   TEXT NOT NULL DEFAULT '',
    provider                TEXT NOT NULL DEFAULT '',
    app_metadata            TEXT NOT NULL DEFAULT '{}' CHECK (json_type(app_metadata) = 'object'),
    user_metadata           TEXT NOT NULL DEFAULT '{}' CHECK (json_type(user_metadata) = 'object'),
    roles                   TEXT CHECK (roles IS NULL OR json_type(roles) = 'array'),
    claims                  TEXT CHECK (claims IS NULL OR json_type(claims) = 'object'),
    netlify_created_at      TEXT,
    netlify_confirmed_at    TEXT,
    netlify_last_sign_in_at TEXT,
    netlify_updated_at      TEXT,
    first_seen_at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    last_seen_at            TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    deleted_at              TEXT,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX authgate_users_email ON authgate_users (lower(email));

CREATE TABLE authgate_signup_allow (
    issuer     TEXT NOT NULL,
    pattern    TEXT NOT NULL CHECK (pattern = lower(pattern) AND pattern LIKE '%@%'),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    PRIMARY KEY (issuer, pattern)
);

CREATE TABLE authgate_changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name TEXT NOT NULL,
    issuer     TEXT,
    subject    TEXT,
    at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'))
);
CREATE INDEX authgate_changes_at ON authgate_changes (at);

CREATE TRIGGER authgate_users_inserted AFTER INSERT ON authgate_users BEGIN
    INSERT INTO authgate_changes (table_name, issuer, subject) VALUES ('authgate_users', NEW.issuer, NEW.subject);
END;
CREATE TRIGGER authgate_users_deleted AFTER DELETE ON authgate_users BEGIN
    INSERT INTO authgate_changes (table_name, issuer, subject) VALUES ('authgate_users', OLD.issuer, OLD.subject);
END;
CREATE TRIGGER authgate_users_updated AFTER UPDATE ON authgate_users
    WHEN OLD.roles IS NOT NEW.roles OR OLD.claims IS NOT NEW.claims OR OLD.deleted_at IS NOT NEW.deleted_at
        OR OLD.email IS NOT NEW.email OR OLD.issuer IS NOT NEW.issuer OR OLD.subject IS NOT NEW.subject
BEGIN
    INSERT INTO authgate_changes (table_name, issuer, subject) VALUES ('authgate_users', OLD.issuer, OLD.subject);
    INSERT INTO authgate_changes (table_name, issuer, subject)
        SELECT 'authgate_users', NEW.issuer, NEW.subject
        WHERE OLD.issuer IS NOT NEW.issuer OR OLD.subject IS NOT NEW.subject;
END;
CREATE TRIGGER authgate_signup_allow_inserted AFTER INSERT ON authgate_signup_allow BEGIN
    INSERT INTO authgate_changes (table_name, issuer) VALUES ('authgate_signup_allow', NEW.issuer);
END;
CREATE TRIGGER authgate_signup_allow_deleted AFTER DELETE ON authgate_signup_allow BEGIN
    INSERT INTO authgate_changes (table_name, issuer) VALUES ('authgate_signup_allow', OLD.issuer);
END;
"#,
    },
    Migration {
        version: 2,
        description: "revocations",
        sql: r#"
CREATE TABLE authgate_revocations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL CHECK (kind IN ('subject', 'jti', 'token_hash', 'issuer')),
    issuer        TEXT,
    subject       TEXT,
    jti           TEXT,
    token_hash    TEXT CHECK (token_hash IS NULL OR (length(token_hash) = 64 AND token_hash NOT GLOB '*[^0-9a-f]*')),
    issued_before TEXT,
    expires_at    TEXT,
    reason        TEXT NOT NULL DEFAULT '',
    created_by    TEXT NOT NULL DEFAULT '',
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000Z', 'now')),
    CHECK ((kind = 'subject') = (subject IS NOT NULL)),
    CHECK ((kind = 'jti') = (jti IS NOT NULL)),
    CHECK ((kind = 'token_hash') = (token_hash IS NOT NULL)),
    CHECK (kind <> 'issuer' OR issuer IS NOT NULL)
);
CREATE INDEX authgate_revocations_expires ON authgate_revocations (expires_at);

ALTER TABLE authgate_changes ADD COLUMN row_id TEXT;

CREATE TRIGGER authgate_revocations_inserted AFTER INSERT ON authgate_revocations BEGIN
    INSERT INTO authgate_changes (table_name, issuer, subject, row_id)
    VALUES ('authgate_revocations', NEW.issuer, NEW.subject, NEW.id);
END;
CREATE TRIGGER authgate_revocations_updated AFTER UPDATE ON authgate_revocations BEGIN
    INSERT INTO authgate_changes (table_name, issuer, subject, row_id)
    VALUES ('authgate_revocations', OLD.issuer, OLD.subject, OLD.id);
    INSERT INTO authgate_changes (table_name, issuer, subject, row_id)
        SELECT 'authgate_revocations', NEW.issuer, NEW.subject, NEW.id WHERE NEW.id IS NOT OLD.id;
END;
CREATE TRIGGER authgate_revocations_deleted AFTER DELETE ON authgate_revocations BEGIN
    INSERT INTO authgate_changes (table_name, issuer, subject, row_id)
    VALUES ('authgate_revocations', OLD.issuer, OLD.subject, OLD.id);
END;
"#,
    },
];

/// The newest schema version this binary knows.
pub fn latest(migrations: &[Migration]) -> i32 {
    migrations.last().map_or(0, |m| m.version)
}
