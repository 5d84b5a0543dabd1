//! What every kind of credential row (token, session, refresh family) records of its issue
//! and its use, below the modules of each kind and `credentials`, which gathers them.

use chrono::Duration;

/// How often a credential's last use is written (a session's `last_seen_at`, a token's or
/// refresh family's `last_used_at`): more precision would cost a write per request for
/// nothing (a session's idle timeout is measured in days, and people read "a minute ago").
pub const TOUCH_EVERY: Duration = Duration::seconds(60);

/// Where a credential was issued: the login's client address and user agent.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}
