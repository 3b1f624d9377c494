//! The pages the email links open when the demo is its own frontend (the default
//! `CRUDAUTH_FRONTEND_URL`): `/verify-email`, `/reset-password`, `/confirm-email-change` and
//! `/magic-link` (a passwordless sign-in link: it signs this browser in).
//! Each is a static page whose script takes the token from the address bar, removes it from
//! there, and posts it to the matching API route.
//!
//! The pages hold a live token in their URL, so they are served with `Referrer-Policy:
//! no-referrer` (the token never leaves in a `Referer`), `Cache-Control: no-store`, and a
//! strict Content-Security-Policy (scripts and styles from this origin only, requests to
//! this origin only, no framing).

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const SCRIPT: &str = include_str!("pages/flows.js");

fn page(title: &str, kind: &str, form: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title></head>\
         <body data-flow=\"{kind}\"><main><h1>{title}</h1>{form}\
         <p id=\"result\" role=\"status\"></p></main>\
         <script src=\"/flows.js\"></script></body></html>\n"
    );
    let mut response = axum::response::Html(html).into_response();
    secure(&mut response);
    response
}

fn secure(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; connect-src 'self'; \
             form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
}

async fn verify() -> Response {
    page(
        "Verify your email",
        "verify",
        "<button id=\"go\" type=\"button\">Confirm this address</button>",
    )
}

async fn reset() -> Response {
    page(
        "Choose a new password",
        "reset",
        "<label>New password <input id=\"password\" type=\"password\" autocomplete=\"new-password\" minlength=\"8\"></label> \
         <button id=\"go\" type=\"button\">Set password</button>",
    )
}

async fn change() -> Response {
    page(
        "Confirm your new email address",
        "change",
        "<button id=\"go\" type=\"button\">Use this address</button>",
    )
}

async fn magic() -> Response {
    page(
        "Sign in",
        "magic",
        "<button id=\"go\" type=\"button\">Sign in to crudauth demo</button>",
    )
}

async fn script() -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response();
    secure(&mut response);
    response
}

/// The pages, for a router of any state.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/verify-email", get(verify))
        .route("/reset-password", get(reset))
        .route("/confirm-email-change", get(change))
        .route("/magic-link", get(magic))
        .route("/flows.js", get(script))
}
