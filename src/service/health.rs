//! Readiness: whether this instance can do its work (today: write to its database).

use crate::service::accounts::Accounts;
use crate::service::error::Result;

impl Accounts {
    /// `Ok` when the database takes a write (rolled back): answering reads is not enough.
    pub async fn ready(&self) -> Result<()> {
        crate::store::probe_write(&self.db).await?;
        Ok(())
    }
}
