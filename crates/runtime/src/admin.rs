//! The admin HTTP server: `/health`, `/ready`, `/metrics`.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use prometheus::Registry;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::encode_metrics;
use crate::readiness::Readiness;

#[derive(Clone)]
pub struct AdminState {
    pub registry: Registry,
    pub readiness: Readiness,
    /// Cancelled when shutdown starts: from then on the service reports not ready so that
    /// load balancers and orchestrators stop sending it work while it drains.
    pub shutdown: CancellationToken,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Serves until `stop` is cancelled (after the service has drained).
pub async fn serve(listener: TcpListener, state: AdminState, stop: CancellationToken) {
    let app = router(state);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    {
        tracing::error!(error = %e, "admin HTTP server failed");
    }
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn ready(State(state): State<AdminState>) -> Response {
    if state.shutdown.is_cancelled() {
        let body = json!({"ready": false, "reason": "shutting down"});
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    let report = state.readiness.report();
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut reason: Vec<String> = report
        .components
        .iter()
        .filter(|(_, v)| v.as_str() != "ok")
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    if report.components.is_empty() {
        reason.push("starting".into());
    }
    let body = json!({"ready": report.ready, "reason": reason.join("; "), "components": report.components});
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        encode_metrics(&state.registry),
    )
}
