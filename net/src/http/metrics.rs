//! `GET /metrics`: the HTTP thread asks shard 0 for the Prometheus exposition (every
//! shard's report, rendered by [`crate::admin::prometheus`]) and answers with it.

use super::inbox::InboxSender;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::channel::oneshot;

/// A scrape: the rendered exposition goes back on the sender.
pub type Scrape = oneshot::Sender<String>;
/// The HTTP thread's end of the queue to shard 0.
pub type Scrapes = InboxSender<Scrape>;

/// `GET /metrics`; any other path is 404, another method 405.
pub fn router(scrapes: Scrapes) -> Router {
    Router::new()
        .route("/metrics", get(move || scrape(scrapes.clone())))
        .fallback(|| async { (StatusCode::NOT_FOUND, "only /metrics is here\n") })
}

/// The body of a scrape without valid credentials (basic auth makes it a 401).
pub fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response()
}

async fn scrape(scrapes: Scrapes) -> Response {
    let (reply, answer) = oneshot::channel();
    if scrapes.send(reply).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "the broker is stopping\n").into_response();
    }
    match answer.await {
        Ok(exposition) => {
            ([(header::CONTENT_TYPE, crate::admin::prometheus::CONTENT_TYPE)], exposition).into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "the broker is stopping\n").into_response(),
    }
}
