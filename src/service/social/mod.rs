//! Social login (issue 13): identity providers and what they assert.
//!
//! - `provider`: an OpenID Connect provider as a relying party sees it: its discovery
//!   document and signing keys, fetched over HTTP and cached with their HTTP lifetimes;
//! - `id_token`: an id_token verified in full against a provider, and the claims Tessera uses.

pub mod id_token;
pub mod provider;

pub use id_token::{IdTokenClaims, IdTokenError, verify_id_token};
pub use provider::{FetchOptions, OidcProvider, ProviderError};
