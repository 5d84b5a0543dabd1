//! The command line: `serve`, `migrate`, `openapi`, `createsuperuser`, `check`,
//! `sendtestemail`, `audit`, `import-django`.

mod import_django;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use migration::{Migrator, MigratorTrait};
use sea_orm_migration::migrator::MigrationStatus;
use secrecy::SecretString;

use crate::app::{self, App};
use crate::config::{Config, LogFormat};
use crate::mail::Rendered;
use crate::mail::transport::Transport;
use crate::service::audit::Caller;
use crate::service::error::Error as ServiceError;

mod users;

#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "Account management service (dj-rest-auth compatible)"
)]
pub struct Cli {
    /// Configuration file (default: ./tessera.toml when it exists).
    #[arg(long, global = true, env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (applies pending migrations first unless database.auto_migrate = false).
    Serve,
    /// Manage the database schema.
    Migrate {
        #[arg(value_enum, default_value_t = MigrateAction::Up)]
        action: MigrateAction,
        /// Confirm `fresh`, which deletes every table and all data.
        #[arg(long)]
        yes: bool,
    },
    /// Print the OpenAPI document (no database needed).
    Openapi {
        /// YAML instead of JSON.
        #[arg(long)]
        yaml: bool,
    },
    /// Create an administrator account. The password comes from TESSERA_PASSWORD or a prompt.
    Createsuperuser {
        #[arg(long)]
        email: String,
    },
    /// Look accounts up, and act on one (set its password, end its credentials, delete it...).
    Users {
        #[command(subcommand)]
        action: users::UsersAction,
    },
    /// `users deactivate`, under its old name (the README documented it).
    #[command(hide = true)]
    Deactivate {
        /// The account's email address.
        email: String,
    },
    /// `users activate`, under its old name.
    #[command(hide = true)]
    Activate {
        /// The account's email address.
        email: String,
    },
    /// Two-factor authentication, for support staff.
    Mfa {
        #[command(subcommand)]
        action: MfaAction,
    },
    /// Check what `serve` would refuse: the configuration (JWT keys included), the secret key,
    /// the database and (for SMTP) the mail server. Creates no files.
    Check {
        /// Also warn about settings wrong for production (like Django's `check --deploy`).
        #[arg(long)]
        deploy: bool,
    },
    /// Send a test email through the configured backend right away (not via the outbox).
    Sendtestemail {
        /// Recipient address.
        address: String,
    },
    /// Import users, their email addresses, dj-rest-auth tokens and MFA authenticators from a
    /// Django database (dj-rest-auth / allauth). Idempotent; prints a summary.
    ImportDjango(import_django::ImportDjango),
    /// List audit events (logins, logouts, password events, rate limits hit...), oldest first.
    Audit {
        /// Only the account with this email address.
        #[arg(long)]
        user: Option<String>,
        /// How many of the newest events to show.
        #[arg(long, default_value_t = 50)]
        limit: u64,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MigrateAction {
    /// Apply all pending migrations.
    Up,
    /// Revert the last applied migration.
    Down,
    /// List migrations and whether each is applied.
    Status,
    /// Drop everything and re-apply all migrations (needs --yes).
    Fresh,
}

/// Parses the command line and runs it; the whole of `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", causes(&err));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes, each said once: many errors repeat their cause in their own
/// message, and `{:#}` would print it twice.
fn causes(err: &anyhow::Error) -> String {
    let mut said = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if said.contains(&text) {
            continue;
        }
        if !said.is_empty() {
            said.push_str(": ");
        }
        said.push_str(&text);
    }
    said
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let loaded = Config::load(cli.config.as_deref(), std::env::vars())?;
    let mut config = loaded.config.clone();
    if matches!(cli.command, Command::ImportDjango(_)) {
        // One audit line per imported account would bury the summary (and, in a dry run,
        // report entries that are rolled back); the entries themselves are still written.
        config.log.level = format!("{},tessera::audit=warn", config.log.level);
    }
    init_logging(&config);
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    match cli.command {
        Command::Serve => {
            let app = App::build(config).await?;
            app.serve(shutdown_signal()).await
        }
        Command::Migrate { action, yes } => migrate(&config, action, yes).await,
        Command::Openapi { yaml } => {
            let document = if yaml {
                crate::api::openapi_yaml(&config)
            } else {
                crate::api::openapi_json(&config)
            };
            print!("{document}");
            Ok(())
        }
        Command::Createsuperuser { email } => create_superuser(config, &email).await,
        Command::Deactivate { email } => set_active(config, &email, false).await,
        Command::Activate { email } => set_active(config, &email, true).await,
        Command::Users { action } => users::run(config, action).await,
        Command::Mfa {
            action: MfaAction::Disable { email },
        } => disable_mfa(config, &email).await,
        Command::Check { deploy } => check(config, &loaded.warnings, deploy).await,
        Command::Sendtestemail { address } => send_test_email(&config, &address).await,
        Command::Audit { user, limit, json } => audit(&config, user.as_deref(), limit, json).await,
        Command::ImportDjango(args) => import_django::run(config, args).await,
    }
}

async fn migrate(config: &Config, action: MigrateAction, yes: bool) -> anyhow::Result<()> {
    let db = app::connect(config).await?;
    match action {
        MigrateAction::Up => {
            let pending = Migrator::get_pending_migrations(&db).await?.len();
            Migrator::up(&db, None).await?;
            println!("applied {pending} migration(s)");
        }
        MigrateAction::Down => {
            Migrator::down(&db, Some(1)).await?;
            println!("reverted the last migration");
        }
        MigrateAction::Status => {
            for migration in Migrator::get_migration_with_status(&db).await? {
                let state = match migration.status() {
                    MigrationStatus::Applied => "applied",
                    MigrationStatus::Pending => "pending",
                };
                println!("{state:8} {}", migration.name());
            }
        }
        MigrateAction::Fresh if !yes => {
            bail!("`migrate fresh` deletes all data; run it again with --yes to confirm")
        }
        MigrateAction::Fresh => {
            Migrator::fresh(&db).await?;
            println!("dropped all tables and re-applied every migration");
        }
    }
    Ok(())
}

/// A new password: `TESSERA_PASSWORD`, else typed twice at a prompt.
fn read_new_password() -> anyhow::Result<SecretString> {
    match std::env::var("TESSERA_PASSWORD") {
        Ok(password) => Ok(SecretString::from(password)),
        Err(_) if !std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            bail!("no terminal to ask for the password on: set TESSERA_PASSWORD in the environment")
        }
        Err(_) => {
            let first = rpassword::prompt_password("Password: ").context("reading the password")?;
            let again =
                rpassword::prompt_password("Password (again): ").context("reading the password")?;
            if first != again {
                bail!("the two passwords didn't match");
            }
            Ok(SecretString::from(first))
        }
    }
}

async fn create_superuser(config: Config, email: &str) -> anyhow::Result<()> {
    let password = read_new_password()?;
    let app = App::build(config).await?;
    match app.accounts.create_superuser(email, &password).await {
        Ok(user) => {
            println!(
                "superuser {} created (username {})",
                user.email, user.username
            );
            Ok(())
        }
        Err(ServiceError::Invalid(errors)) => {
            let problems: Vec<String> = errors
                .iter()
                .map(|(field, messages)| format!("{field}: {}", messages.join(" ")))
                .collect();
            bail!("{}", problems.join("; "))
        }
        Err(err) => Err(err.into()),
    }
}

#[derive(Debug, Subcommand)]
enum MfaAction {
    /// Switch MFA off for an account whose owner lost their device and recovery codes; they
    /// log in with the password alone and may set it up again.
    Disable {
        /// The account's email address.
        #[arg(long)]
        email: String,
    },
}

async fn disable_mfa(config: Config, email: &str) -> anyhow::Result<()> {
    let app = App::build(config).await?;
    match app.accounts.disable_mfa(email).await {
        Ok(()) => println!("MFA is off for {email}"),
        Err(ServiceError::NotFound) => bail!("no account has the email address {email}"),
        Err(err) => return Err(err.into()),
    }
    Ok(())
}

async fn set_active(config: Config, email: &str, active: bool) -> anyhow::Result<()> {
    let app = App::build(config).await?;
    let caller = Caller::new(None, Some("tessera command line"));
    match app.accounts.set_active(email, active, &caller).await {
        Ok(user) if active => println!("{} can log in again", user.email),
        Ok(user) => println!("{} is deactivated; its credentials have ended", user.email),
        Err(ServiceError::NotFound) => bail!("no account has the email address {email}"),
        Err(err) => return Err(err.into()),
    }
    Ok(())
}

async fn check(config: Config, warnings: &[String], deploy: bool) -> anyhow::Result<()> {
    println!("configuration: ok (auth.mode = {:?})", config.auth.mode);
    for warning in warnings {
        println!("warning: {warning}");
    }
    if config.auth.mode == crate::config::AuthMode::Jwt {
        crate::service::jwt::JwtKeys::from_config(&config)
            .map_err(|err| anyhow::anyhow!("JWT keys: {err}"))?;
        println!("jwt keys: ok ({:?})", config.jwt.algorithm);
    }
    // What serve would do about the key, without doing it (check creates no files).
    match app::secret_key_source(&config)? {
        app::SecretKeySource::Configured => println!("secret key: ok"),
        app::SecretKeySource::File(path) if path.exists() => {
            println!("secret key: ok (from {})", path.display())
        }
        app::SecretKeySource::File(path) => println!(
            "secret key: none yet; serve will generate one into {}",
            path.display()
        ),
    }
    match config.sqlite_path() {
        Some(path) if !path.exists() => println!(
            "database: none yet; serve will create {} and migrate it",
            path.display()
        ),
        _ => {
            let db = app::connect(&config).await?;
            crate::store::ping(&db)
                .await
                .context("querying the database")?;
            let pending = Migrator::get_pending_migrations(&db).await?.len();
            println!(
                "database: ok ({}; {pending} pending migration(s))",
                crate::config::redact_url_password(&config.database.url)
            );
        }
    }
    let dir = &config.email.file_dir;
    if config.email.backend == crate::config::EmailBackend::File && !dir.exists() {
        println!("mail: file; serve will create {}", dir.display());
    } else {
        let transport = Transport::from_config(&config.email)?;
        transport
            .check()
            .await
            .with_context(|| format!("mail backend {}", transport.describe()))?;
        println!("mail: ok ({})", transport.describe());
    }
    if deploy {
        let warnings = config.deployment_warnings();
        for warning in &warnings {
            println!("deploy: {warning}");
        }
        println!("deploy: {} warning(s)", warnings.len());
    }
    Ok(())
}

async fn audit(config: &Config, user: Option<&str>, limit: u64, json: bool) -> anyhow::Result<()> {
    let db = app::connect(config).await?;
    let entries = match crate::service::audit::history(&db, user, limit).await {
        Ok(entries) => entries,
        Err(ServiceError::NotFound) => bail!(
            "no account has the email address {}",
            user.unwrap_or_default()
        ),
        Err(err) => return Err(err).context("reading the audit trail (is the database migrated?)"),
    };
    match print_audit(&entries, json) {
        // `tessera audit | head` closes the pipe early: that is not a failure.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("writing to standard output"),
    }
}

fn print_audit(entries: &[crate::service::audit::Recorded], json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        for entry in entries {
            writeln!(out, "{}", serde_json::to_string(entry)?)?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{:<20}  {:<19}  {:<7}  {:<24}  {:<32}  {:<15}  USER AGENT",
        "TIME (UTC)", "EVENT", "OUTCOME", "REASON", "ACCOUNT", "IP"
    )?;
    for entry in entries {
        let account = match (&entry.email, entry.user_id) {
            (Some(email), _) => email.clone(),
            (None, Some(id)) => format!("#{id} (deleted)"),
            (None, None) => "-".into(),
        };
        writeln!(
            out,
            "{:<20}  {:<19}  {:<7}  {:<24}  {:<32}  {:<15}  {}",
            entry.at.format("%Y-%m-%dT%H:%M:%SZ"),
            entry.event,
            entry.outcome,
            entry.reason.as_deref().unwrap_or("-"),
            account,
            entry.ip.as_deref().unwrap_or("-"),
            // Debug-quoted: whatever a client sent cannot draw on the terminal.
            entry
                .user_agent
                .as_deref()
                .map_or_else(|| "-".into(), |ua| format!("{ua:?}")),
        )?;
    }
    Ok(())
}

async fn send_test_email(config: &Config, address: &str) -> anyhow::Result<()> {
    let transport = Transport::from_config(&config.email)?;
    let host = hostname();
    let message = Rendered {
        subject: format!(
            "{}Test email from {host} on {}",
            config.email.subject_prefix,
            chrono::Utc::now().to_rfc2822()
        ),
        text: "If you're reading this, it was successful.\n".into(),
        html: "<p>If you're reading this, it was successful.</p>\n".into(),
    };
    match transport
        .send(&config.email.from.to_string(), address, &message)
        .await
    {
        Ok(()) => {
            println!(
                "sent a test email to {address} via {}",
                transport.describe()
            );
            Ok(())
        }
        Err(err) => bail!("could not send via {}: {err}", transport.describe()),
    }
}

fn hostname() -> String {
    hostname::get()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "tessera".into())
}

fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    // PostgreSQL's notices ("relation seaql_migrations already exists, skipping") are noise.
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| {
            EnvFilter::try_new(format!("{},sqlx::postgres::notice=warn", config.log.level))
        })
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a person at a terminal; files and log collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let result = match config.log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    // Already initialised (e.g. by a test harness): keep the existing subscriber.
    drop(result);
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.ok();
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
