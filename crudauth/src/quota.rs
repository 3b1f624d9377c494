//! The plain outcome types of a rate-limit check: an [`Allowed`] request (whose headers
//! go on the response) and a [`Limited`] one (the 429). A leaf module: it imports nothing
//! from the crate, so `error.rs` can name [`Limited`] without importing the rate limiter.
//! Both are public as `crudauth::ratelimit::{Allowed, Limited}`.

use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

/// A counted request that was allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowed {
    /// The limit.
    pub limit: u32,
    /// Requests left in this window.
    pub remaining: u32,
    /// Seconds until the window resets.
    pub reset: u64,
}

impl Allowed {
    /// Adds the rate-limit headers to a response.
    ///
    /// ```
    /// let allowed = crudauth::ratelimit::Allowed { limit: 5, remaining: 4, reset: 3599 };
    /// let mut headers = axum::http::HeaderMap::new();
    /// allowed.write_headers(&mut headers);
    /// assert_eq!(headers["x-ratelimit-limit"], "5");
    /// ```
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        for (name, value) in [
            ("ratelimit-limit", u64::from(self.limit)),
            ("ratelimit-remaining", u64::from(self.remaining)),
            ("ratelimit-reset", self.reset),
            ("x-ratelimit-limit", u64::from(self.limit)),
            ("x-ratelimit-remaining", u64::from(self.remaining)),
        ] {
            headers.insert(name, HeaderValue::from(value));
        }
    }
}

/// A refused request: `429` with `Retry-After` and the rate-limit headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limited {
    /// The limit.
    pub limit: u32,
    /// Seconds until the window resets.
    pub retry_after: u64,
}

impl IntoResponse for Limited {
    fn into_response(self) -> Response {
        let mut response = (
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            axum::Json(serde_json::json!({ "detail": "Too many requests. Try again later." })),
        )
            .into_response();
        Allowed {
            limit: self.limit,
            remaining: 0,
            reset: self.retry_after,
        }
        .write_headers(response.headers_mut());
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            HeaderValue::from(self.retry_after.max(1)),
        );
        response
    }
}
