//! Tessera inside a product's own poem application: Tessera's API, Swagger UI and health
//! checks at their usual paths, the product's own routes beside them reading Tessera's
//! credentials, and the background work (mail, revocations) running.
//!
//!     cargo run --example embed      # then open http://127.0.0.1:3000/docs
//!
//! Settings come from `tessera.toml` and `TESSERA_*` as for `tessera serve`.

use poem::listener::TcpListener;
use poem::{Endpoint, EndpointExt, Route, Server, get, handler};
use tessera::{App, CurrentUser, MaybeUser};

/// A product page for logged-in users only (401 in Tessera's shape otherwise).
#[handler]
fn dashboard(user: CurrentUser) -> String {
    format!("Hello, {}!", user.0.email)
}

/// A page for everyone, that greets logged-in users by name.
#[handler]
fn home(user: MaybeUser) -> String {
    match user.0 {
        Some(user) => format!("Welcome back, {}.", user.username),
        None => "Welcome.".to_owned(),
    }
}

/// The product's application: Tessera's routes, and the product's own under `/app/`.
pub fn product_routes(tessera: &App) -> impl Endpoint + 'static {
    Route::new().nest("/", tessera.routes()).nest(
        "/app",
        Route::new()
            .at("/", get(home))
            .at("/dashboard", get(dashboard))
            .with(tessera.guard()),
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let loaded = tessera::Config::load(None, std::env::vars())?;
    let tessera = App::build(loaded.config).await?;
    // Mail leaves the outbox, and other instances' logouts arrive, only while this runs.
    let background = tessera.start_background().await;
    Server::new(TcpListener::bind("127.0.0.1:3000"))
        .run(product_routes(&tessera))
        .await?;
    background.stop().await;
    Ok(())
}
