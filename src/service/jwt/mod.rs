//! JWT mode's machinery: `keys` signs and checks tokens shaped as SimpleJWT's (pure, no
//! database); `sessions` is the use case: refresh families with rotation and reuse detection.

pub mod keys;
pub mod sessions;

pub use keys::{Issued, JwtKeys, JwtRejection};
pub use sessions::{JwtSessions, Refreshed, TokenPair};
