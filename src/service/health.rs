//! Readiness: whether this instance can do its work (today: reach its database).

use crate::service::accounts::Accounts;
use crate::service::error::Result;

impl Accounts {
    /// `Ok` when the database answers a trivial query.
    pub async fn ready(&self) -> Result<()> {
        crate::store::ping(&self.db).await?;
        Ok(())
    }
}
