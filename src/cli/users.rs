//! `authgate users …` and `authgate store migrate`: the operator's view of
//! the user store, through the same backends the service uses.

use crate::config::Config;
use crate::store::row::{Change, EventKind, NetlifyFields};
use crate::store::view::claim_problem;
use crate::store::{Backend, StoreError};
use clap::Subcommand;
use serde_json::{Map, Value};
use std::process::ExitCode;
use std::sync::Arc;

/// `authgate users …`.
#[derive(Subcommand)]
pub enum UsersCommand {
    /// Print users as JSON lines, by issuer then first seen.
    List {
        /// Only this issuer's users.
        #[arg(long)]
        issuer: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Print one user's row as JSON.
    Show {
        /// The configured issuer name.
        issuer: String,
        /// The user's subject (Netlify user id).
        subject: String,
    },
    /// Set the app-owned roles (replacing them); `--clear` removes them.
    SetRoles {
        /// The configured issuer name.
        issuer: String,
        /// The user's subject.
        subject: String,
        /// The roles.
        roles: Vec<String>,
        /// Remove the app's roles (the column becomes NULL).
        #[arg(long, conflicts_with = "roles")]
        clear: bool,
    },
    /// Set the app-owned claims to a JSON object (`-` reads standard
    /// input); `--clear` removes them.
    SetClaims {
        /// The configured issuer name.
        issuer: String,
        /// The user's subject.
        subject: String,
        /// A JSON object.
        json: Option<String>,
        /// Remove the app's claims.
        #[arg(long, conflicts_with = "json")]
        clear: bool,
    },
    /// Mark a user deleted (final: the subject never comes back).
    Delete {
        /// The configured issuer name.
        issuer: String,
        /// The user's subject.
        subject: String,
    },
}

/// `authgate store …`.
#[derive(Subcommand)]
pub enum StoreCommand {
    /// Apply the schema migrations this binary carries.
    Migrate,
}

/// The configured store's backend, or the exit code of why not.
pub(super) fn backend(config: &Config) -> Result<Arc<dyn Backend>, ExitCode> {
    let Some(store) = &config.store else {
        eprintln!("no [store] is configured (set [store] url, or AUTHGATE_STORE_URL)");
        return Err(ExitCode::from(2));
    };
    crate::store::open(store).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(2)
    })
}

/// Runs one store call on a fresh runtime; a store error is exit 3.
pub(super) fn block_on<T>(
    f: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
        eprintln!("cannot start the async runtime: {e}");
        ExitCode::FAILURE
    })?;
    runtime.block_on(f).map_err(|e| {
        eprintln!("store error: {e}");
        ExitCode::from(3)
    })
}

/// Runs `authgate store …`.
pub fn store(config: &Config, command: StoreCommand) -> ExitCode {
    let StoreCommand::Migrate = command;
    let run = || -> Result<(), ExitCode> {
        let db = backend(config)?;
        let (from, to) = block_on(db.migrate())?;
        eprintln!("store schema: version {from} -> {to} ({})", db.kind());
        Ok(())
    };
    run().err().unwrap_or(ExitCode::SUCCESS)
}

/// Runs `authgate users …`: 0 done, 1 no such user, 2 usage or config
/// error, 3 the store failed.
pub fn users(config: &Config, command: UsersCommand) -> ExitCode {
    let run = || -> Result<(), ExitCode> {
        let db = backend(config)?;
        match command {
            UsersCommand::List { issuer, limit } => {
                for row in block_on(db.list(issuer.as_deref(), limit))? {
                    outln!("{}", row.to_json());
                }
            }
            UsersCommand::Show { issuer, subject } => match block_on(db.user(&issuer, &subject))? {
                Some(row) => outln!("{:#}", row.to_json()),
                None => return Err(no_such_user()),
            },
            UsersCommand::SetRoles { issuer, subject, roles, clear } => {
                if !clear && roles.iter().any(|r| r.is_empty() || r.chars().any(char::is_control)) {
                    eprintln!("a role must be non-empty and hold no control character");
                    return Err(ExitCode::from(2));
                }
                let roles = (!clear).then_some(roles.as_slice());
                found(block_on(db.set_roles(&issuer, &subject, roles))?)?;
            }
            UsersCommand::SetClaims { issuer, subject, json, clear } => {
                let claims = if clear { None } else { Some(read_claims(json)?) };
                found(block_on(db.set_claims(&issuer, &subject, claims.as_ref()))?)?;
            }
            UsersCommand::Delete { issuer, subject } => {
                if block_on(db.user(&issuer, &subject))?.is_none() {
                    return Err(no_such_user());
                }
                let fields = NetlifyFields::bare(&issuer, &subject);
                block_on(db.apply(&Change::Event(EventKind::UserDeleted, fields)))?;
            }
        }
        Ok(())
    };
    run().err().unwrap_or(ExitCode::SUCCESS)
}

fn no_such_user() -> ExitCode {
    eprintln!("no such user in the store");
    ExitCode::from(1)
}

fn found(updated: bool) -> Result<(), ExitCode> {
    if updated { Ok(()) } else { Err(no_such_user()) }
}

/// The claims argument: a JSON object whose every claim the store would
/// keep (reserved names and oversize values are refused here, not dropped
/// later).
fn read_claims(json: Option<String>) -> Result<Map<String, Value>, ExitCode> {
    let text = match json.as_deref() {
        Some(t) if t != "-" => t.to_string(),
        _ => {
            let mut text = String::new();
            let mut limited = std::io::Read::take(std::io::stdin(), 1 << 20);
            std::io::Read::read_to_string(&mut limited, &mut text).map_err(|e| {
                eprintln!("cannot read the claims from stdin: {e}");
                ExitCode::from(2)
            })?;
            text
        }
    };
    let Ok(Value::Object(claims)) = serde_json::from_str::<Value>(&text) else {
        eprintln!("the claims must be one JSON object");
        return Err(ExitCode::from(2));
    };
    let mut refused = false;
    for (name, value) in &claims {
        if let Some(why) = claim_problem(name, value) {
            eprintln!("claim `{}`: {why}", name.escape_debug());
            refused = true;
        }
    }
    if claims.len() > crate::store::view::MAX_CLAIMS {
        eprintln!("at most {} claims", crate::store::view::MAX_CLAIMS);
        refused = true;
    }
    if refused { Err(ExitCode::from(2)) } else { Ok(claims) }
}
