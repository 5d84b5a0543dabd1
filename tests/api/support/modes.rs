//! The three auth modes, each as its kind of frontend uses it, for scenarios that run in every
//! mode.

use tessera::Config;
use tessera::config::AuthMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `Authorization: Token`.
    Token,
    /// `Authorization: Bearer`, the refresh token in bodies.
    Jwt,
    /// A browser: `sessionid`, and the `csrftoken` cookie echoed in `X-CSRFToken`.
    Session,
}

pub const MODES: [Mode; 3] = [Mode::Token, Mode::Jwt, Mode::Session];

impl Mode {
    pub fn configure(self, config: &mut Config) {
        config.auth.mode = match self {
            Mode::Token => AuthMode::Token,
            Mode::Jwt => AuthMode::Jwt,
            Mode::Session => AuthMode::Session,
        };
    }

    /// What a login's credential is listed as (`sessions/`).
    pub fn kind(self) -> &'static str {
        match self {
            Mode::Token => "token",
            Mode::Jwt => "jwt",
            Mode::Session => "session",
        }
    }
}
