//! Social login (issue 13): identity providers and what they assert.
//!
//! - `provider`: an OpenID Connect provider as a relying party sees it: its discovery
//!   document and signing keys, fetched over HTTP and cached with their HTTP lifetimes;
//! - `client`: a configured provider as an OAuth 2.0 client (`oidc`, `google`, `github`):
//!   the authorization URL, the code exchange, and who a token belongs to;
//! - `identity`: what a provider says of its user, whichever way it said it;
//! - `id_token`: an id_token verified in full against a provider, and the claims Tessera uses.

pub mod client;
pub mod id_token;
pub mod identity;
pub mod provider;

pub use client::{SocialClient, SocialClients, SocialError};
pub use id_token::{IdTokenClaims, IdTokenError, verify_id_token};
pub use identity::Identity;
pub use provider::{FetchOptions, OidcProvider, ProviderError};
