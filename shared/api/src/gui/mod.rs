//! The web GUI at `/gui`: one HTML page with its style and script embedded in the binary (no
//! build step, nothing fetched from elsewhere). It only reads the REST API, with the browser's
//! credentials (or a user token it is given), so it can show nothing the API would not. The
//! page itself holds no data and needs no credential.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const PAGE: &str = include_str!("index.html");

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/gui", get(page))
        .route("/gui/", get(page))
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Scripts and styles from this page only; data from this origin only.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'",
            ),
        ],
        PAGE,
    )
}
