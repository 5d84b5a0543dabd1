//! `/health/live` (the process answers) and `/health/ready` (and its database does too).

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{Route, get, handler};
use serde_json::{Value, json};

use crate::service::accounts::Accounts;

#[handler]
fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

#[handler]
async fn ready(accounts: Data<&Accounts>) -> (StatusCode, Json<Value>) {
    match accounts.ready().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ok", "database": "ok" })),
        ),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "database": "unavailable" })),
            )
        }
    }
}

pub fn routes() -> Route {
    Route::new().at("/live", get(live)).at("/ready", get(ready))
}
