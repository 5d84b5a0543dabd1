//! Tessera's credentials in the product's own routes, for applications that embed Tessera.
//!
//! [`Guard`] is a poem middleware: wrap the product's routes in it (`App::guard()`), and their
//! handlers can take [`CurrentUser`] (401/403 in the mode's DRF shape without a valid
//! credential) or [`MaybeUser`]. Credentials are read exactly as Tessera's own endpoints read
//! them (the mode's header or cookie, `auth.session_login`'s session with its CSRF check, the
//! credential cache).
//!
//! ```rust,ignore
//! #[handler]
//! fn dashboard(user: tessera::CurrentUser) -> String {
//!     format!("hello {}", user.0.email)
//! }
//! let app = Route::new()
//!     .nest("/", tessera.routes())
//!     .at("/dashboard", get(dashboard).with(tessera.guard()));
//! ```

use std::sync::Arc;

use poem::middleware::CookieJarManager;
use poem::{Endpoint, FromRequest, Middleware, Request, RequestBody};

use crate::api::error::ApiError;
use crate::api::mode::credentials::Authenticate;
use crate::service::principal::User;

/// Attaches what reading a Tessera credential needs to each request of the routes it wraps.
#[derive(Clone)]
pub struct Guard {
    attach: Arc<dyn Fn(&mut Request) + Send + Sync>,
}

impl Guard {
    pub(crate) fn new(attach: impl Fn(&mut Request) + Send + Sync + 'static) -> Self {
        Self {
            attach: Arc::new(attach),
        }
    }
}

impl<E: Endpoint> Middleware<E> for Guard {
    type Output = Guarded<<CookieJarManager as Middleware<E>>::Output>;

    /// Session credentials are cookies: the routes get poem's cookie jar too (a no-op where
    /// the product already has one).
    fn transform(&self, inner: E) -> Self::Output {
        Guarded {
            inner: CookieJarManager::new().transform(inner),
            guard: self.clone(),
        }
    }
}

/// A product endpoint wrapped in [`Guard`].
pub struct Guarded<E> {
    inner: E,
    guard: Guard,
}

impl<E: Endpoint> Endpoint for Guarded<E> {
    type Output = E::Output;

    async fn call(&self, mut request: Request) -> poem::Result<E::Output> {
        (self.guard.attach)(&mut request);
        self.inner.call(request).await
    }
}

/// The user behind the request's Tessera credential; refused (the mode's 401, or 403 in
/// session mode) without one.
pub struct CurrentUser(pub User);

/// The user behind the request's Tessera credential, if one was presented (an invalid one is
/// still refused).
pub struct MaybeUser(pub Option<User>);

async fn user_of(request: &Request) -> poem::Result<Option<User>> {
    let Some(authenticate) = request.data::<Authenticate>() else {
        tracing::error!("CurrentUser used on a route not wrapped in tessera's Guard");
        return Err(ApiError::internal().into());
    };
    Ok(authenticate.principal(request).await?.map(|p| p.user))
}

impl<'a> FromRequest<'a> for CurrentUser {
    async fn from_request(request: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        match user_of(request).await? {
            Some(user) => Ok(Self(user)),
            None => Err(ApiError::not_authenticated().into()),
        }
    }
}

impl<'a> FromRequest<'a> for MaybeUser {
    async fn from_request(request: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        Ok(Self(user_of(request).await?))
    }
}
