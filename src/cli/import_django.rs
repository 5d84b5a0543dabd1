//! `tessera import-django`: the import (`service::django_import`) with a progress bar on a
//! terminal and a summary at the end.

use std::io::IsTerminal;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::app::App;
use crate::config::{Config, redact_url_password};
use crate::service::django_import::source::DjangoDatabase;
use crate::service::django_import::{Counts, ImportOptions, Progress, Summary};

#[derive(Debug, clap::Args)]
pub struct ImportDjango {
    /// The Django database: postgres://USER:PASSWORD@HOST/DB, or sqlite:///ABSOLUTE/PATH
    /// (opened read-only).
    #[arg(long = "from", value_name = "DATABASE_URL")]
    from: String,
    /// Read everything and report what would be imported; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Import into a Tessera database that already has users of its own.
    #[arg(long)]
    merge: bool,
    /// The user model's table, for a custom `AUTH_USER_MODEL` with AbstractUser's columns.
    #[arg(long, default_value = "auth_user")]
    user_table: String,
    /// The summary as one JSON object.
    #[arg(long)]
    json: bool,
}

pub async fn run(config: Config, args: ImportDjango) -> anyhow::Result<()> {
    let source = DjangoDatabase::open(&args.from, &args.user_table)
        .await
        .with_context(|| format!("reading {}", redact_url_password(&args.from)))?;
    let app = App::build(config).await?;
    let bar = match std::io::stderr().is_terminal() && !args.json {
        true => ProgressBar::new(0).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} users  {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        false => ProgressBar::hidden(),
    };
    let options = ImportOptions {
        dry_run: args.dry_run,
        merge: args.merge,
    };
    let summary = app
        .accounts
        .import_django(&source, options, |progress| match progress {
            Progress::Total(total) => bar.set_length(total),
            Progress::Read(read) => bar.set_position(read),
        })
        .await;
    bar.finish_and_clear();
    let summary = summary?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", describe(&summary));
    }
    Ok(())
}

/// The summary for a person.
fn describe(summary: &Summary) -> String {
    let mut text = String::new();
    let mut line = |label: &str, counts: &Counts| {
        text.push_str(&format!(
            "{label:<16} {} imported, {} already here, {} skipped\n",
            counts.imported,
            counts.already_present,
            counts.skipped.len()
        ));
        for skipped in &counts.skipped {
            text.push_str(&format!(
                "  skipped (Django user {}): {}\n",
                skipped.django_id, skipped.reason
            ));
        }
    };
    line("users:", &summary.users);
    line("email addresses:", &summary.email_addresses);
    line("tokens:", &summary.tokens);
    line("mfa:", &summary.mfa_authenticators);
    for new_id in &summary.new_ids {
        text.push_str(&format!(
            "Django user {} got id {} (its own was taken)\n",
            new_id.django_id, new_id.id
        ));
    }
    if !summary.passwords.is_empty() {
        let kinds: Vec<String> = summary
            .passwords
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        text.push_str(&format!("passwords:       {}\n", kinds.join(", ")));
    }
    let locked_out = summary.passwords.get("above_cap").copied().unwrap_or(0)
        + summary.passwords.get("not_checked").copied().unwrap_or(0);
    if locked_out > 0 {
        text.push_str(&format!(
            "{locked_out} user(s) have a password Tessera will not check (a format it does not \
             know, or a cost above password_hashing.max_imported_cost): they reset it to log in\n"
        ));
    }
    if summary.dry_run {
        text.push_str("dry run: nothing was written\n");
    } else if summary.nothing_new() {
        text.push_str("nothing to import: everything is already here\n");
    }
    text
}
