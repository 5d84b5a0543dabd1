//! `tessera users ...`: support staff's view of accounts and what they may do to one. This
//! file parses, prompts and prints; the work is `service::operator` (and `account_status`).

use std::io::Write;

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::app::App;
use crate::config::Config;
use crate::messages::LAST_SUPERUSER;
use crate::service::audit::Caller;
use crate::service::error::Error as ServiceError;
use crate::service::operator::{AccountDetails, AccountSummary, EmailVerified};

/// Who the audit trail says did it.
const CALLER: &str = "tessera command line";

#[derive(Debug, Subcommand)]
pub(super) enum UsersAction {
    /// List accounts, oldest first.
    List {
        /// Only accounts whose email, username, first or last name contains this text
        /// (case-insensitively).
        #[arg(long)]
        search: Option<String>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one account: its details, email addresses, MFA, live credentials and linked
    /// identity providers.
    Show {
        /// The account's (primary) email address.
        email: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Set an account's password (from TESSERA_PASSWORD or a prompt); every credential it
    /// holds ends, on every instance, and its owner is mailed, as after a password reset.
    SetPassword {
        /// The account's email address.
        email: String,
    },
    /// Deactivate an account: it can no longer log in, and every credential it holds ends at
    /// once on every instance.
    Deactivate {
        /// The account's email address.
        email: String,
    },
    /// Reactivate a deactivated account (its old credentials stay ended).
    Activate {
        /// The account's email address.
        email: String,
    },
    /// Mark an email address confirmed (the account's primary one, or any other it added).
    VerifyEmail {
        /// The address to confirm.
        email: String,
    },
    /// End every credential of an account on every instance, without deactivating it.
    Logout {
        /// The account's email address.
        email: String,
    },
    /// Delete an account and everything tied to it (needs --yes).
    Delete {
        /// The account's email address.
        email: String,
        /// Confirm: the account cannot be brought back.
        #[arg(long)]
        yes: bool,
    },
}

impl UsersAction {
    /// The address the command names (`list` names none).
    fn email(&self) -> Option<&str> {
        match self {
            UsersAction::List { .. } => None,
            UsersAction::Show { email, .. }
            | UsersAction::SetPassword { email }
            | UsersAction::Deactivate { email }
            | UsersAction::Activate { email }
            | UsersAction::VerifyEmail { email }
            | UsersAction::Logout { email }
            | UsersAction::Delete { email, .. } => Some(email),
        }
    }
}

pub(super) async fn run(config: Config, action: UsersAction) -> anyhow::Result<()> {
    match &action {
        // The same code as the old top-level `deactivate` / `activate`.
        UsersAction::Deactivate { email } => return super::set_active(config, email, false).await,
        UsersAction::Activate { email } => return super::set_active(config, email, true).await,
        // Refused before anything is built: a refusal changes nothing.
        UsersAction::Delete { email, yes: false } => {
            bail!("`users delete` cannot be undone; run it again with --yes to delete {email}")
        }
        _ => {}
    }
    // Read before connecting: a mistyped password should not wait for the database.
    let password = match &action {
        UsersAction::SetPassword { .. } => Some(super::read_new_password()?),
        _ => None,
    };
    let email = action.email().unwrap_or_default().to_owned();
    let caller = Caller::new(None, Some(CALLER));
    let app = App::build(config).await?;
    let accounts = &app.accounts;
    let result = match action {
        UsersAction::List { search, json } => {
            let found = accounts.list_accounts(search.as_deref()).await?;
            return print(|out| print_list(out, &found, json));
        }
        UsersAction::Show { json, .. } => match accounts.account_details(&email).await {
            Ok(details) => return print(|out| print_details(out, &details, json)),
            Err(err) => Err(err),
        },
        UsersAction::SetPassword { .. } => {
            let password = password.context("the password was read above")?;
            match accounts
                .set_password_as_operator(&email, &password, &caller)
                .await
            {
                Ok(user) => {
                    println!(
                        "{}'s password is set; its credentials have ended",
                        user.email
                    );
                    Ok(())
                }
                Err(ServiceError::Invalid(errors)) => {
                    let messages: Vec<&str> = errors
                        .iter()
                        .flat_map(|(_, messages)| messages.iter().map(String::as_str))
                        .collect();
                    bail!("the password was refused: {}", messages.join(" "))
                }
                Err(err) => Err(err),
            }
        }
        UsersAction::VerifyEmail { .. } => {
            match accounts.verify_email_as_operator(&email, &caller).await {
                Ok(EmailVerified::Now { address, account }) => {
                    println!("{address} is verified (account {account})");
                    Ok(())
                }
                Ok(EmailVerified::Already { address, account }) => {
                    println!("{address} was verified already (account {account})");
                    Ok(())
                }
                Ok(EmailVerified::TakenByAnother) => {
                    bail!("another account has verified {email} (or has it as its primary address)")
                }
                Ok(EmailVerified::Ambiguous) => bail!(
                    "several accounts added {email} and none has it as its primary address: \
                     which one to verify it for cannot be told"
                ),
                Err(err) => Err(err),
            }
        }
        UsersAction::Logout { .. } => match accounts.log_out_everywhere(&email, &caller).await {
            Ok(live) => {
                println!("{live} live credential(s) of {email} ended, on every instance");
                Ok(())
            }
            Err(err) => Err(err),
        },
        UsersAction::Delete { .. } => {
            match accounts.delete_account_as_operator(&email, &caller).await {
                Ok(()) => {
                    println!("{email} is deleted");
                    Ok(())
                }
                Err(ServiceError::Forbidden(LAST_SUPERUSER)) => bail!(
                    "{email} is the last active superuser; create another with \
                     `tessera createsuperuser` first"
                ),
                Err(err) => Err(err),
            }
        }
        UsersAction::Deactivate { .. } | UsersAction::Activate { .. } => {
            unreachable!("handled before the app was built")
        }
    };
    match result {
        Ok(()) => Ok(()),
        Err(ServiceError::NotFound) => bail!("no account has the email address {email}"),
        Err(err) => Err(err.into()),
    }
}

/// Runs `write` on standard output; a reader that hung up (`| head`) is no failure.
fn print(
    write: impl FnOnce(&mut std::io::StdoutLock<'static>) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match write(&mut out).and_then(|()| out.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("writing to standard output"),
    }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

fn when(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(
        || "-".into(),
        |at| at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// The name as Django's `get_full_name` gives it, `-` when empty.
fn full_name(account: &AccountSummary) -> String {
    let name = format!("{} {}", account.first_name, account.last_name);
    match name.trim() {
        "" => "-".into(),
        name => name.into(),
    }
}

fn print_list(
    out: &mut impl Write,
    accounts: &[AccountSummary],
    json: bool,
) -> std::io::Result<()> {
    if json {
        for account in accounts {
            writeln!(out, "{}", serde_json::to_string(account)?)?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{:>6}  {:<32}  {:<20}  {:<24}  {:<6}  {:<5}  {:<9}  {:<8}  {:<20}  LAST LOGIN (UTC)",
        "ID",
        "EMAIL",
        "USERNAME",
        "NAME",
        "ACTIVE",
        "STAFF",
        "SUPERUSER",
        "VERIFIED",
        "JOINED (UTC)"
    )?;
    for account in accounts {
        writeln!(
            out,
            "{:>6}  {:<32}  {:<20}  {:<24}  {:<6}  {:<5}  {:<9}  {:<8}  {:<20}  {}",
            account.id,
            account.email,
            account.username,
            // Debug-quoted when it holds what could draw on the terminal: users chose it.
            printable(&full_name(account)),
            yes_no(account.is_active),
            yes_no(account.is_staff),
            yes_no(account.is_superuser),
            yes_no(account.email_verified),
            when(Some(account.date_joined)),
            when(account.last_login),
        )?;
    }
    Ok(())
}

fn print_details(
    out: &mut impl Write,
    details: &AccountDetails,
    json: bool,
) -> std::io::Result<()> {
    if json {
        return writeln!(out, "{}", serde_json::to_string(details)?);
    }
    let account = &details.account;
    writeln!(out, "id:              {}", account.id)?;
    writeln!(out, "email:           {}", account.email)?;
    writeln!(out, "username:        {}", account.username)?;
    writeln!(out, "name:            {}", printable(&full_name(account)))?;
    writeln!(out, "active:          {}", yes_no(account.is_active))?;
    writeln!(out, "staff:           {}", yes_no(account.is_staff))?;
    writeln!(out, "superuser:       {}", yes_no(account.is_superuser))?;
    writeln!(out, "email verified:  {}", yes_no(account.email_verified))?;
    writeln!(out, "date joined:     {}", when(Some(account.date_joined)))?;
    writeln!(out, "last login:      {}", when(account.last_login))?;
    writeln!(
        out,
        "mfa:             {}",
        if details.mfa_enabled { "on" } else { "off" }
    )?;
    let live = &details.live_credentials;
    writeln!(
        out,
        "credentials:     {} live ({} token(s), {} session(s), {} refresh famil{})",
        live.total(),
        live.tokens,
        live.sessions,
        live.refresh_families,
        if live.refresh_families == 1 {
            "y"
        } else {
            "ies"
        }
    )?;
    match details.social_accounts.as_slice() {
        [] => writeln!(out, "social accounts: none")?,
        links => {
            writeln!(out, "social accounts:")?;
            for link in links {
                writeln!(
                    out,
                    "  {} (uid {}, linked {}, last login {})",
                    link.provider,
                    printable(&link.uid),
                    when(Some(link.date_joined)),
                    when(link.last_login)
                )?;
            }
        }
    }
    writeln!(out, "email addresses:")?;
    for address in &details.email_addresses {
        let mut notes = vec![if address.verified {
            "verified"
        } else {
            "unverified"
        }];
        if address.primary {
            notes.push("primary");
        }
        writeln!(out, "  {} ({})", address.email, notes.join(", "))?;
    }
    Ok(())
}

/// `text` as it is when it has no control characters, else Debug-quoted.
fn printable(text: &str) -> String {
    if text.chars().any(char::is_control) {
        format!("{text:?}")
    } else {
        text.to_owned()
    }
}
