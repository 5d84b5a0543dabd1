//! The instance's state: readiness (whether it can do its work: write to its database), and
//! the metrics scrape, which reads the states that are not events (outbox, database pool).

use crate::service::accounts::Accounts;
use crate::service::error::Result;

impl Accounts {
    /// `Ok` when the database takes a write (rolled back): answering reads is not enough.
    pub async fn ready(&self) -> Result<()> {
        crate::store::probe_write(&self.db).await?;
        Ok(())
    }

    /// The metrics as Prometheus text, with the states read now: the outbox backlog and the
    /// database pool (its size, idle connections, and how long a connection takes to get).
    pub async fn metrics_text(&self) -> String {
        let metrics = self.metrics();
        if let Ok((pending, oldest)) = crate::store::outbox::backlog(self.db()).await {
            metrics.outbox_pending.set(pending);
            let age = oldest.map_or(0, |at| (chrono::Utc::now() - at).num_seconds().max(0));
            metrics.outbox_oldest_age.set(age);
        }
        let db = self.db();
        // The pool's size, its idle connections, and how long one takes to get now.
        macro_rules! pool_state {
            ($pool:expr) => {{
                let pool = $pool;
                let started = std::time::Instant::now();
                let acquired = pool.acquire().await.is_ok();
                (
                    pool.size(),
                    pool.num_idle(),
                    acquired.then(|| started.elapsed()),
                )
            }};
        }
        let (size, idle, acquire) = match db.get_database_backend() {
            sea_orm::DatabaseBackend::Sqlite => pool_state!(db.get_sqlite_connection_pool()),
            sea_orm::DatabaseBackend::Postgres => pool_state!(db.get_postgres_connection_pool()),
            _ => (0, 0, None),
        };
        metrics.db_pool_size.set(i64::from(size));
        metrics
            .db_pool_idle
            .set(i64::try_from(idle).unwrap_or(i64::MAX));
        if let Some(waited) = acquire {
            metrics.db_acquire_wait.set(waited.as_secs_f64());
        }
        metrics.render()
    }
}
