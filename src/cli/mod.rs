//! The command line: `authgate [serve]`, `check-config`, `token`, `verify`,
//! `jwks`, `keys generate`. `main.rs` parses [`Cli`] and calls [`run`].

/// Writes to standard output. A reader that went away (`authgate config
/// schema | head`) is nothing to panic about: the rest is simply not read.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// [`out!`] with a newline.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

pub mod gotrue_token;
pub mod revoke;
pub mod users;

use crate::config::{Config, Inputs, Mode};
use clap::{Args, Parser, Subcommand};
use gotrue_token::TokenSpec;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Token verification for teams whose users log in through Netlify.
#[derive(Parser)]
#[command(name = "authgate", version, about)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Clone)]
struct Global {
    /// Config file (TOML). Without it (and without AUTHGATE_CONFIG),
    /// authgate runs its zero-config dev default.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// gRPC listen address [env: AUTHGATE_GRPC_ADDR] [default: 127.0.0.1:50051]
    #[arg(long, global = true, value_name = "ADDR")]
    grpc_addr: Option<String>,
    /// HTTP listen address [env: AUTHGATE_HTTP_ADDR] [default: 127.0.0.1:8080]
    #[arg(long, global = true, value_name = "ADDR")]
    http_addr: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Validate the configuration, print it with secrets redacted, exit 0 if valid.
    CheckConfig {
        /// Check structure and values without reading secret or key files
        /// (for the CI of a config repository, which has no secrets).
        #[arg(long)]
        offline: bool,
    },
    /// The config file's format.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a token shaped like a Netlify Identity access token, signed for
    /// the dev issuer (or the issuer named with --issuer).
    Token(TokenArgs),
    /// Verify a token with the configured issuers, as the service would:
    /// prints the identity as JSON (exit 0), or the denial reason on stderr
    /// (exit 1 denied, 3 unavailable: retry later; 2 usage or config error).
    Verify(VerifyArgs),
    /// Print the public JWKS of the configured [exchange] signing keys.
    Jwks,
    /// Manage Exchange signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The user store's users: list, show, set the app's roles and claims,
    /// mark deleted (exit 1: no such user; 3: the store failed).
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// The user store's schema.
    #[command(subcommand)]
    Store(users::StoreCommand),
    /// Revoke tokens: a subject's (before a time, or forever), one `jti`,
    /// one exact token, or an issuer's; every replica applies it.
    Revoke(revoke::RevokeArgs),
    /// The revocation entries: list, delete.
    #[command(subcommand)]
    Revocations(revoke::RevocationsCommand),
}

#[derive(Args)]
struct VerifyArgs {
    /// The token; `-` or nothing reads it from standard input (keeps it out
    /// of shell history and process lists).
    token: Option<String>,
    /// Verify with this configured issuer (default: route as the service does).
    #[arg(long)]
    issuer: Option<String>,
    /// Require one of these roles (repeatable, any-of).
    #[arg(long = "role")]
    roles: Vec<String>,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print a JSON Schema of the config file, for editors and CI.
    Schema,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new private key (PKCS#8 PEM) for [[exchange.keys]] private_key_file.
    Generate {
        /// EdDSA (default), ES256 or RS256.
        #[arg(long, default_value = "EdDSA")]
        alg: String,
    },
}

#[derive(Args)]
struct TokenArgs {
    /// `sub` (default: a random UUID).
    #[arg(long)]
    sub: Option<String>,
    /// `email`.
    #[arg(long, default_value = "dev@example.com")]
    email: String,
    /// A role in `app_metadata.roles` (repeatable).
    #[arg(long = "role")]
    roles: Vec<String>,
    /// Lifetime, e.g. 1h, 15m, 90s.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// `aud` (omitted by default, as on most Netlify sites).
    #[arg(long)]
    aud: Option<String>,
    /// `app_metadata.provider`.
    #[arg(long, default_value = "email")]
    provider: String,
    /// Sign with this configured issuer's current secret instead of the dev/default one.
    #[arg(long)]
    issuer: Option<String>,
}

/// Runs one command line to its exit code: 0 done, 1 denied (`verify`), 2 a
/// usage or config error, 3 unavailable (`verify`: retry later).
pub fn run(cli: Cli) -> ExitCode {
    // Generating a key needs no configuration.
    match &cli.command {
        Some(Command::Keys(KeysCommand::Generate { alg })) => return generate_key(alg),
        Some(Command::Config(ConfigCommand::Schema)) => {
            outln!("{:#}", crate::config::schema());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let offline = matches!(cli.command, Some(Command::CheckConfig { offline: true }));
    let config = match load_config(&cli.global, offline, cli.command.as_ref()) {
        Ok(c) => c,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config, cli.global),
        Command::CheckConfig { offline } => {
            // Keys are parsed as a generation would parse them, so a key that
            // would fail at start fails here (offline, no key was read).
            if !offline {
                let mut errors = crate::keys::Material::build(&config).err().map(|e| e.0).unwrap_or_default();
                if let Some(Err(e)) = config.tls.as_ref().map(crate::keys::tls::TlsStore::load) {
                    errors.push(e);
                }
                if !errors.is_empty() {
                    eprint!("{}", crate::config::ConfigErrors(errors));
                    return ExitCode::from(2);
                }
            }
            out!("{}", config.render_redacted());
            eprintln!("configuration is valid");
            ExitCode::SUCCESS
        }
        Command::Token(args) => token(&config, args),
        Command::Verify(args) => verify(config, args),
        Command::Jwks => jwks(&config),
        Command::Users(command) => users::users(&config, command),
        Command::Store(command) => users::store(&config, command),
        Command::Revoke(args) => revoke::revoke(&config, args),
        Command::Revocations(command) => revoke::revocations(&config, command),
        // Handled above, before any configuration is read.
        Command::Keys(KeysCommand::Generate { alg }) => generate_key(&alg),
        Command::Config(ConfigCommand::Schema) => ExitCode::SUCCESS,
    }
}

/// The config from the flags, the process environment and the files they
/// name; the same at start and on every reload.
fn load_config(
    global: &Global,
    offline: bool,
    command: Option<&Command>,
) -> Result<Config, crate::config::ConfigErrors> {
    let env = |k: &str| std::env::var(k).ok();
    let workdir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let zero_config = global.config.is_none() && env(crate::config::ENV_CONFIG).is_none();
    if zero_config && !offline && env(crate::config::ENV_DEV_SECRET).is_none() {
        let path = crate::config::dev_secret_path(&env, &workdir);
        let created =
            crate::config::create_dev_secret(&path).map_err(|e| crate::config::ConfigErrors(vec![e]))?;
        if created && !matches!(command, None | Some(Command::Serve)) {
            // A token signed with a secret no server has is the classic
            // dev-mode trap: say so instead of failing later with
            // `bad_signature` (a dev server already running under another
            // user, HOME or AUTHGATE_DEV_SECRET has a different one).
            eprintln!(
                "authgate: created a new dev secret at {}; only a dev server started after this, by this user, \
                 accepts tokens signed with it",
                path.display()
            );
        }
    }
    Config::load(&Inputs {
        config_path: global.config.clone(),
        grpc_addr: global.grpc_addr.clone(),
        http_addr: global.http_addr.clone(),
        env: &env,
        workdir,
        offline,
    })
}

fn generate_key(alg: &str) -> ExitCode {
    let alg = match crate::config::MintAlg::from_flag(alg) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match crate::keys::ring::generate_pkcs8_pem(alg) {
        Ok(pem) => {
            out!("{pem}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot generate a key: {e}");
            ExitCode::FAILURE
        }
    }
}

fn token(config: &Config, args: TokenArgs) -> ExitCode {
    let issuer = match &args.issuer {
        Some(name) => config.issuers.iter().find(|i| &i.name == name),
        None => config.issuers.iter().find(|i| i.default).or(config.issuers.first()),
    };
    let Some(secret) = issuer.and_then(|i| i.signing_secret()) else {
        let hs: Vec<&String> =
            config.issuers.iter().filter(|i| i.signing_secret().is_some()).map(|i| &i.name).collect();
        eprintln!("no such issuer with a signing secret; hs256 issuers: {hs:?}");
        return ExitCode::from(2);
    };
    let spec = TokenSpec {
        subject: args.sub,
        email: args.email,
        roles: args.roles,
        provider: args.provider,
        audience: args.aud,
        ttl: args.ttl,
    };
    match gotrue_token::sign(&spec, secret, crate::core::claims::unix_now()) {
        Ok(t) => {
            outln!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot sign: {e}");
            ExitCode::FAILURE
        }
    }
}

fn verify(config: Config, args: VerifyArgs) -> ExitCode {
    let token = match args.token.as_deref() {
        Some(t) if t != "-" => t.trim().to_string(),
        _ => {
            let mut text = String::new();
            let mut limited = std::io::Read::take(std::io::stdin(), 1 << 20);
            if let Err(e) = std::io::Read::read_to_string(&mut limited, &mut text) {
                eprintln!("cannot read the token from stdin: {e}");
                return ExitCode::from(2);
            }
            text.trim().to_string()
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let core = match crate::gate::Gate::from_config_with_store(&config).await {
            Ok(core) => core,
            Err(errors) => {
                eprint!("{errors}");
                return ExitCode::from(2);
            }
        };
        let headers = crate::core::headers::Headers::new();
        let input = crate::gate::VerifyInput {
            token: Some(&token),
            headers: &headers,
            required_roles: &args.roles,
            issuer: args.issuer.as_deref(),
            require_signed_proxy: false,
            client: None,
            identity_in_headers: false,
        };
        match core.verify(crate::obs::metrics::Adapter::Cli, input).await {
            Ok(v) => {
                outln!("{:#}", v.identity.to_json());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("denied: {} ({e})", e.reason());
                match e.grpc_code() {
                    tonic::Code::Unavailable => ExitCode::from(3),
                    tonic::Code::InvalidArgument => ExitCode::from(2),
                    _ => ExitCode::from(1),
                }
            }
        }
    })
}

fn jwks(config: &Config) -> ExitCode {
    if let Mode::Dev { .. } = config.mode {
        return dev_jwks(config);
    }
    let Some(exchange) = &config.exchange else {
        eprintln!("no [exchange] signing keys are configured");
        return ExitCode::from(2);
    };
    match crate::keys::ring::KeyRing::new(exchange) {
        Ok(ring) => {
            outln!("{}", ring.jwks_json());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprint!("{}", crate::config::ConfigErrors(errors));
            ExitCode::from(2)
        }
    }
}

/// Dev mode's Exchange key is made afresh at each start, so the keys to
/// print are the running dev server's: asked of it, at its HTTP address.
fn dev_jwks(config: &Config) -> ExitCode {
    let url = format!("http://{}/.well-known/jwks.json", config.http_addr);
    let fetched = tokio::runtime::Builder::new_current_thread().enable_all().build().map(|rt| {
        rt.block_on(async {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
            client.get(&url).send().await?.error_for_status()?.text().await
        })
    });
    match fetched {
        Ok(Ok(jwks)) => {
            outln!("{}", jwks.trim_end());
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "no dev server answers at {url}: dev mode makes its Exchange key at each start, so start \
                 `authgate` (with the same --http-addr) and run this again"
            );
            ExitCode::from(3)
        }
    }
}

/// Re-reads the config as at start (same flags, current environment and
/// files) on every SIGHUP.
fn sighup_reloader(global: Global) -> Option<crate::app::Reloader> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; live reload is off");
            return None;
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let tx_watch = tx.clone();
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the configuration");
            // A reload already queued covers this one too.
            let _ = tx.try_send(());
        }
    });
    Some(crate::app::Reloader {
        load: Box::new(move || load_config(&global, false, Some(&Command::Serve))),
        requests: rx,
        trigger: tx_watch,
    })
}

fn serve(config: Config, global: Global) -> ExitCode {
    // Flushes buffered log lines when serve returns.
    let _log_guard = crate::obs::logs::init(&config.log);
    crate::adapters::listen::raise_descriptor_limit(config.limits.max_connections);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The span exporter runs on its own thread with a blocking HTTP client,
    // so it is built and shut down outside the async runtime.
    let traces = match crate::obs::traces::init(&config.tracing) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot start tracing: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(serve_on_runtime(config, global));
    drop(runtime);
    if let Some(provider) = traces {
        // Flushes spans still batched.
        let _ = provider.shutdown();
    }
    code
}

async fn serve_on_runtime(config: Config, global: Global) -> ExitCode {
    let listeners = match crate::app::Listeners::bind(&config).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot bind {} / {}: {e}", config.grpc_addr, config.http_addr);
            return ExitCode::FAILURE;
        }
    };
    if let Mode::Dev { secret_origin } = &config.mode {
        print_dev_banner(&config, secret_origin, &listeners);
    }
    let reloader = sighup_reloader(global);
    match crate::app::run_with_reload(listeners, config, crate::app::shutdown_signal(), reloader).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

fn print_dev_banner(config: &Config, secret_origin: &str, listeners: &crate::app::Listeners) {
    let grpc = listeners.grpc_addr().map(|a| a.to_string()).unwrap_or_else(|_| config.grpc_addr.to_string());
    let http = listeners.http_addr().map(|a| a.to_string()).unwrap_or_else(|_| config.http_addr.to_string());
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "authgate".into());
    // A path with a space would split the suggested command.
    let exe = if exe.contains(' ') { format!("'{exe}'") } else { exe };
    let from_env = secret_origin == crate::config::ENV_DEV_SECRET;
    let whose = if from_env {
        "with the same AUTHGATE_DEV_SECRET set"
    } else {
        "as this user, in any directory: the secret is per user"
    };
    outln!(
        "authgate: zero-config dev mode (no --config / AUTHGATE_CONFIG given)
  issuer `dev`: GoTrue-shaped HS256 tokens, secret from {secret_origin}
  gRPC  {grpc}  (authgate.v1.AuthService, grpc.health.v1, reflection)
  HTTP  http://{http}/healthz  /readyz

Mint a token for this server and check it, from any terminal ({whose}):
  {exe} token --email you@example.com --role admin | {exe} verify
Clients: clients/python, clients/node, clients/go (the README's examples), --addr {grpc}
"
    );
}
