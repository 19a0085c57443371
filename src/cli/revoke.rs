//! `authgate revoke …` and `authgate revocations list|delete`: revocation
//! entries in the user store, which every replica applies through the
//! change feed.

use super::users::{backend, block_on};
use crate::config::Config;
use crate::gate::revocation::RevokeSpec;
use crate::store::revocations::NewRevocation;
use clap::Args;
use std::process::ExitCode;

/// `authgate revoke`: exactly one of `--subject`, `--jti`, `--token`,
/// `--issuer-wide`.
#[derive(Args)]
pub struct RevokeArgs {
    /// Refuse this subject's tokens (every issuer, or `--issuer`).
    #[arg(long, group = "what")]
    subject: Option<String>,
    /// Refuse the token with this `jti`.
    #[arg(long, group = "what")]
    jti: Option<String>,
    /// Refuse this exact token (`-` reads it from standard input); only its
    /// SHA-256 is stored.
    #[arg(long, group = "what")]
    token: Option<String>,
    /// Refuse every token of `--issuer` (a leaked signing secret).
    #[arg(long, group = "what", requires = "issuer")]
    issuer_wide: bool,
    /// Limit to this configured issuer.
    #[arg(long)]
    issuer: Option<String>,
    /// Tokens issued before this time are refused (RFC 3339 or seconds
    /// since the epoch; default now). Subject and issuer-wide only.
    #[arg(long, conflicts_with = "forever")]
    before: Option<String>,
    /// Refuse every token of the subject, past and future, with no end.
    #[arg(long)]
    forever: bool,
    /// Why (kept with the entry).
    #[arg(long, default_value = "")]
    reason: String,
    /// Who (default: $USER).
    #[arg(long)]
    by: Option<String>,
}

/// `authgate revocations …`.
#[derive(clap::Subcommand)]
pub enum RevocationsCommand {
    /// Print the active entries as JSON lines.
    List,
    /// Delete an entry by id (a deleted user stays deleted).
    Delete {
        /// The entry's id.
        id: i64,
    },
}

fn parse_time(v: &str) -> Option<i64> {
    v.parse::<i64>().ok().or_else(|| crate::store::row::Stamp::parse(v).and_then(|s| s.unix()))
}

/// The entry `args` describe, or a usage error.
fn entry(config: &Config, args: RevokeArgs) -> Result<NewRevocation, String> {
    let before = match &args.before {
        Some(v) => Some(parse_time(v).ok_or("--before must be RFC 3339 or seconds since the epoch")?),
        None => None,
    };
    let token = match args.token {
        Some(t) if t == "-" => {
            let mut text = String::new();
            let mut limited = std::io::Read::take(std::io::stdin(), 1 << 20);
            std::io::Read::read_to_string(&mut limited, &mut text).map_err(|e| format!("stdin: {e}"))?;
            Some(text.trim().to_string())
        }
        other => other,
    };
    let spec = RevokeSpec {
        subject: args.subject,
        jti: args.jti,
        token,
        issuer_wide: args.issuer_wide,
        issuer: args.issuer,
        before,
        forever: args.forever,
        reason: args.reason,
        created_by: args.by.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "cli".into()),
    };
    crate::gate::revocation::entry(config, spec, crate::core::claims::unix_now())
}

/// Runs `authgate revoke`: prints the entry as JSON.
pub fn revoke(config: &Config, args: RevokeArgs) -> ExitCode {
    let new = match entry(config, args) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let run = || -> Result<(), ExitCode> {
        let db = backend(config)?;
        let r = block_on(db.revoke(&new))?;
        outln!("{}", r.to_json());
        Ok(())
    };
    run().err().unwrap_or(ExitCode::SUCCESS)
}

/// Runs `authgate revocations …`.
pub fn revocations(config: &Config, command: RevocationsCommand) -> ExitCode {
    let run = || -> Result<(), ExitCode> {
        let db = backend(config)?;
        match command {
            RevocationsCommand::List => {
                for r in block_on(db.revocations())? {
                    outln!("{}", r.to_json());
                }
            }
            RevocationsCommand::Delete { id } => {
                if !block_on(db.delete_revocation(id))? {
                    eprintln!("no such revocation");
                    return Err(ExitCode::from(1));
                }
            }
        }
        Ok(())
    };
    run().err().unwrap_or(ExitCode::SUCCESS)
}
