//! Building the application from its configuration, and running it until stopped.

use crate::metrics::Metrics;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use migration::{Migrator, MigratorTrait};
use poem::Server;
use poem::listener::{Acceptor, Listener, TcpListener};
use sea_orm::DatabaseConnection;
use secrecy::SecretString;

use crate::api::edge::header_timeout::HeaderTimeout;
use crate::api::guard::Guard;
use crate::config::{Config, redact_url_password};
use crate::mail::outbox::{Outbox, OutboxWorker};
use crate::mail::templates::Templates;
use crate::mail::transport::Transport;
use crate::service::accounts::Accounts;
use crate::service::password_hashing::PasswordHasher;
use crate::service::revocations::RevocationFeed;

/// Everything a running Tessera holds: configuration, database pool, services, mail.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub accounts: Accounts,
    pub outbox: Outbox,
    pub transport: Arc<Transport>,
    /// The HTTP application, built once (its mode's credential strategy included).
    routes: Arc<poem::endpoint::BoxEndpoint<'static>>,
    guard: Guard,
}

impl App {
    /// Connects to the database (migrating it when `database.auto_migrate`), settles the secret
    /// key and builds the services.
    pub async fn build(mut config: Config) -> anyhow::Result<Self> {
        ensure_secret_key(&mut config)?;
        let db = connect(&config).await?;
        if config.database.auto_migrate {
            Migrator::up(&db, None)
                .await
                .context("applying database migrations")?;
        }
        let hasher = PasswordHasher::new(&config.password_hashing)?;
        // Templates compile here, so a broken override stops startup instead of a signup.
        let templates = Templates::load(&config.email).context("loading email templates")?;
        let transport =
            Transport::from_config(&config.email).context("setting up email delivery")?;
        let outbox = Outbox::new(templates);
        let config = Arc::new(config);
        let metrics = Arc::new(Metrics::new());
        let accounts = Accounts::new(db.clone(), config.clone(), hasher, outbox.clone(), metrics)?;
        // The mode's credential strategy is built here, so a bad JWT key stops startup.
        let inbox = transport.inbox().cloned();
        let (routes, guard) = crate::api::routes(accounts.clone(), &config, inbox)?;
        let routes = poem::EndpointExt::boxed(routes);
        Ok(Self {
            routes: Arc::new(routes),
            guard,
            config,
            db,
            accounts,
            outbox,
            transport: Arc::new(transport),
        })
    }

    /// The mail worker for this instance's outbox.
    pub fn outbox_worker(&self) -> OutboxWorker {
        OutboxWorker::new(
            self.db.clone(),
            &self.outbox,
            self.transport.clone(),
            &self.config.email,
        )
        .instrumented(self.accounts.metrics().clone())
    }

    /// The task that applies other instances' revocations to this one's credential cache.
    pub fn revocation_feed(&self) -> RevocationFeed {
        RevocationFeed::new(
            self.db.clone(),
            &self.config.database.url,
            self.accounts.revocations().clone(),
            self.config.jwt.access_lifetime_seconds,
        )
    }

    /// The HTTP application, to serve or to nest in another poem app (with
    /// [`App::start_background`] running beside it).
    pub fn routes(&self) -> impl poem::Endpoint + 'static {
        self.routes.clone()
    }

    /// A middleware for the embedding product's own routes: their handlers can then take
    /// [`crate::CurrentUser`] or [`crate::MaybeUser`] (see `api::guard`).
    pub fn guard(&self) -> Guard {
        self.guard.clone()
    }

    /// Starts what must run beside the routes: the mail worker (without it no mail leaves the
    /// outbox), the revocation feed (other instances' logouts and password changes), and
    /// SQLite's checkpoints. `serve` starts it itself; an application that embeds the routes
    /// calls it once and keeps the handle (dropping it stops the work).
    pub async fn start_background(&self) -> Background {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut feed = self.revocation_feed();
        if let Err(err) = feed.replay().await {
            tracing::warn!(error = %err, "could not read the revocation log at startup");
        }
        let accounts = self.accounts.clone();
        let others = vec![
            tokio::spawn(feed.run(stopped.clone())),
            // Identity providers' discovery and keys, fetched ahead of the first sign-in; one
            // that cannot be reached is a warning and is tried again when needed.
            tokio::spawn(async move { accounts.warm_up_social_providers().await }),
            tokio::spawn(crate::store::checkpoint_every(
                self.db.clone(),
                Duration::from_secs(60),
                stopped.clone(),
            )),
        ];
        let outbox = tokio::spawn(self.outbox_worker().run(stopped));
        Background {
            stop,
            outbox: Some(outbox),
            others,
        }
    }

    /// Serves on `config.bind` until `shutdown` completes, then drains open requests.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let acceptor = TcpListener::bind(self.config.bind)
            .into_acceptor()
            .await
            .with_context(|| format!("listening on {}", self.config.bind))?;
        self.serve_on(acceptor, shutdown).await
    }

    /// Binds `127.0.0.1:0` and serves in the background; returns the address (for tests).
    pub async fn spawn(self) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
        let addr = local_addr(&acceptor)?;
        let handle = tokio::spawn(async move {
            if let Err(err) = self.serve_on(acceptor, std::future::pending()).await {
                tracing::error!(error = %err, "server stopped");
            }
        });
        Ok((addr, handle))
    }

    async fn serve_on(
        self,
        acceptor: impl Acceptor + 'static,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = local_addr(&acceptor)?;
        let base = format!("http://{addr}");
        tracing::info!(
            address = %addr,
            docs = %format!("{base}/docs"),
            api = %format!("{base}{}", self.config.server.prefix),
            "Tessera is listening; Swagger UI at {base}/docs"
        );
        tracing::info!(backend = %self.transport.describe(), "mail delivery");
        // `/metrics` on a listener of its own, when `metrics.bind` is set.
        let metrics_server = match (self.config.metrics.enabled, self.config.metrics.bind) {
            (true, Some(addr)) => {
                let listener = TcpListener::bind(addr)
                    .into_acceptor()
                    .await
                    .with_context(|| format!("binding metrics.bind {addr}"))?;
                tracing::info!(address = %addr, "metrics at http://{addr}/metrics");
                let route = poem::Route::new().at(
                    "/metrics",
                    crate::api::metrics_endpoint(self.accounts.clone()),
                );
                Some(tokio::spawn(Server::new_with_acceptor(listener).run(route)))
            }
            _ => None,
        };
        let background = self.start_background().await;
        let routes = self.routes();
        let acceptor = HeaderTimeout::new(
            acceptor,
            Duration::from_secs(self.config.server.header_read_timeout_seconds),
        );
        let served = Server::new_with_acceptor(acceptor)
            .idle_timeout(Duration::from_secs(self.config.server.idle_timeout_seconds))
            .run_with_graceful_shutdown(
                routes,
                shutdown,
                Some(Duration::from_secs(
                    self.config.server.shutdown_grace_seconds,
                )),
            )
            .await;
        if let Some(server) = metrics_server {
            server.abort();
        }
        // Requests are drained; let the worker finish the message in hand, then stop it.
        background.stop().await;
        self.db.close().await.ok();
        served.context("serving HTTP")
    }
}

/// The work [`App::start_background`] started; stops when dropped, or gracefully with
/// [`Background::stop`].
pub struct Background {
    stop: tokio::sync::watch::Sender<bool>,
    outbox: Option<tokio::task::JoinHandle<()>>,
    others: Vec<tokio::task::JoinHandle<()>>,
}

impl Background {
    /// Lets the mail worker finish the message in hand (30 s at most), then stops everything.
    pub async fn stop(mut self) {
        self.stop.send(true).ok();
        if let Some(outbox) = self.outbox.take()
            && tokio::time::timeout(Duration::from_secs(30), outbox)
                .await
                .is_err()
        {
            tracing::warn!("mail worker did not stop in time; queued mail stays in the outbox");
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.send(true).ok();
        for task in &self.others {
            task.abort();
        }
    }
}

fn local_addr(acceptor: &impl Acceptor) -> anyhow::Result<SocketAddr> {
    acceptor
        .local_addr()
        .into_iter()
        .find_map(|addr| addr.as_socket_addr().copied())
        .context("the listener has no socket address")
}

/// Opens the configured database, naming it (without its password) when that fails.
pub async fn connect(config: &Config) -> anyhow::Result<DatabaseConnection> {
    if let Some(path) = config.sqlite_path() {
        crate::private_files::prepare_sqlite(&path)
            .with_context(|| format!("preparing the SQLite database file {}", path.display()))?;
    }
    crate::store::connect(
        &config.database.url,
        config.database.max_connections,
        Duration::from_secs(config.database.acquire_timeout_seconds),
    )
    .await
    .with_context(|| {
        format!(
            "connecting to the database at {}",
            redact_url_password(&config.database.url)
        )
    })
}

/// Where the secret key comes from.
pub enum SecretKeySource {
    /// `secret_key` is set.
    Configured,
    /// A key file: read when it exists, generated when not.
    File(PathBuf),
}

/// Where the secret key comes from; an error when nowhere will do (a shared database needs
/// every instance to use the same configured key).
pub fn secret_key_source(config: &Config) -> anyhow::Result<SecretKeySource> {
    if config.secret_key.is_some() {
        return Ok(SecretKeySource::Configured);
    }
    match (&config.secret_key_file, config.sqlite_path()) {
        (Some(path), _) => Ok(SecretKeySource::File(path.clone())),
        (None, Some(db)) => Ok(SecretKeySource::File(default_key_file(&db))),
        (None, None) => bail!(
            "secret_key is not set. With a shared database every instance must use the same \
             key: set TESSERA_SECRET_KEY (at least 32 random bytes) or secret_key_file"
        ),
    }
}

/// Fills in `config.secret_key` when none is configured: read from, or generated into, a
/// `0600` key file, by default beside the SQLite database (so restarts keep credentials valid).
pub fn ensure_secret_key(config: &mut Config) -> anyhow::Result<()> {
    let path = match secret_key_source(config)? {
        SecretKeySource::Configured => return Ok(()),
        SecretKeySource::File(path) => path,
    };
    let key = if path.exists() {
        let key = fs::read_to_string(&path)
            .with_context(|| format!("reading the secret key file {}", path.display()))?;
        key.trim().to_owned()
    } else {
        let key = crate::secrets::random_hex(32);
        write_private_file(&path, &key)?;
        tracing::warn!(
            path = %path.display(),
            "no secret_key configured: generated one and saved it; production deployments \
             should set TESSERA_SECRET_KEY"
        );
        key
    };
    if key.len() < crate::config::MIN_SECRET_KEY_BYTES {
        bail!(
            "the secret key in {} is too short (under 32 bytes)",
            path.display()
        );
    }
    config.secret_key = Some(SecretString::from(key));
    Ok(())
}

/// `tessera.db` → `tessera.secret`, in the same directory.
fn default_key_file(db: &Path) -> PathBuf {
    let stem = db
        .file_stem()
        .map_or("tessera".into(), |s| s.to_string_lossy().into_owned());
    db.with_file_name(format!("{stem}.secret"))
}

fn write_private_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    crate::private_files::create_new(path, contents.as_bytes())
        .with_context(|| format!("creating the secret key file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_is_kept_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("accounts.db");
        let mut config = Config::default();
        config.database.url = format!("sqlite://{}?mode=rwc", db.display());
        ensure_secret_key(&mut config).unwrap();
        let key_file = dir.path().join("accounts.secret");
        let first = fs::read_to_string(&key_file).unwrap();
        assert_eq!(first.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&key_file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut again = Config::default();
        again.database.url = config.database.url.clone();
        ensure_secret_key(&mut again).unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(again.secret_key.unwrap().expose_secret(), first);
    }

    #[test]
    fn a_shared_database_needs_a_configured_key() {
        let mut config = Config::default();
        config.database.url = "postgres://postgres@127.0.0.1/tessera".into();
        let err = ensure_secret_key(&mut config).unwrap_err().to_string();
        assert!(err.contains("TESSERA_SECRET_KEY"), "{err}");
    }
}
