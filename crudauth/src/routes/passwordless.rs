//! The passwordless routes (feature `passwordless`): `/otp/request`, `/otp/verify`,
//! `/magic-link/verify`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::post;
use serde_json::json;

use super::signin::{Ending, ending, signed_in};
use super::{private_json, with_limit};
use crate::body::Fields;
use crate::captcha::CaptchaAction;
use crate::client_ip::{ClientMeta, ip_key};
use crate::delivery::Medium;
use crate::error::{AuthError, ValidationIssue};
use crate::facade::CrudAuth;
use crate::passwordless::{Address, Passwordless, Proven};
use crate::transport::session::{companion_cookie_name, cookie};
use crate::user::UserRecord;

impl<U: UserRecord> CrudAuth<U> {
    /// The passwordless service, when [`crate::CrudAuthBuilder::passwordless`] turned it on.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// assert!(auth.passwordless().is_none()); // the fixture signs in by password only
    /// # Ok(()) });
    /// ```
    pub fn passwordless(&self) -> Option<&Passwordless<U>> {
        self.inner.methods.passwordless.as_ref()
    }

    /// The passwordless routes only (empty without them): `POST /otp/request`,
    /// `POST /otp/verify`, `GET` and `POST /magic-link/verify`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// let app: axum::Router = auth.passwordless_router();
    /// # Ok(()) });
    /// ```
    pub fn passwordless_router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        super::limited(self.passwordless_routes()).with_state(self.clone())
    }

    pub(super) fn passwordless_routes(&self) -> Router<CrudAuth<U>> {
        if self.passwordless().is_none() {
            return Router::new();
        }
        Router::new()
            .route("/otp/request", post(request::<U>))
            .route("/otp/verify", post(verify::<U>))
            .route(
                "/magic-link/verify",
                post(link_post::<U>).get(link_get::<U>),
            )
    }
}

fn service<U: UserRecord>(auth: &CrudAuth<U>) -> Result<&Passwordless<U>, AuthError> {
    auth.passwordless().ok_or(AuthError::NotFound("Not Found"))
}

const SENT: &str = "If the address can sign in, a code has been sent.";

/// The same-browser cookie's name (`__Host-` when the session cookie has the prefix).
fn browser_cookie<U: UserRecord>(auth: &CrudAuth<U>) -> &'static str {
    companion_cookie_name(auth.sessions(), "__Host-otp_browser", "otp_browser")
}

/// The address of a body: exactly one of `email` and `phone`, each checked and normalised.
fn address_of<U: UserRecord>(
    passwordless: &Passwordless<U>,
    fields: &mut Fields,
) -> Option<Address> {
    let has_email = fields.all().contains_key("email");
    let has_phone = fields.all().contains_key("phone");
    match (has_email, has_phone) {
        (true, false) if passwordless.supports(Medium::Email) => {
            fields.email("email").map(Address::Email)
        }
        (false, true) if passwordless.supports(Medium::Sms) => {
            let raw = fields.string("phone")?;
            match crate::user::normalize_phone(&raw) {
                Some(phone) => Some(Address::Phone(phone)),
                None => {
                    fields.issues().push(ValidationIssue::body(
                        "phone",
                        "value_error",
                        "value is not a valid phone number (E.164, such as +15551234567)",
                    ));
                    None
                }
            }
        }
        _ => {
            let wanted = match (
                passwordless.supports(Medium::Email),
                passwordless.supports(Medium::Sms),
            ) {
                (true, true) => "Give exactly one of email and phone.",
                (true, false) => "Give an email address.",
                _ => "Give a phone number.",
            };
            fields
                .issues()
                .push(ValidationIssue::body("email", "missing", wanted));
            None
        }
    }
}

/// `POST /otp/request {email | phone}`: the uniform answer at the fixed time.
async fn request<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let since = tokio::time::Instant::now();
    let passwordless = service(&auth)?;
    let allowed = auth
        .rate_limiter()
        .enforce("otp_request", &format!("ip:{}", ip_key(client.ip)))
        .await?;
    let mut fields = Fields::json(&headers, &body)?;
    let address = address_of(passwordless, &mut fields);
    // With sign-up on, a disposable address is refused for everyone alike (before any
    // lookup); without it, the code only ever reaches existing accounts.
    if passwordless.config().create_accounts
        && let Some(Address::Email(email)) = &address
        && let Some(issue) = auth
            .core()
            .disposable
            .as_ref()
            .and_then(|list| list.issue("email", email))
    {
        fields.issues().push(issue);
    }
    let address = fields.finish(address)?;
    auth.core()
        .check_captcha(CaptchaAction::Passwordless, &client, &headers, &body)
        .await?;
    let nonce = passwordless.request(address, &client);
    tokio::time::sleep_until(since + passwordless.config().answer_after).await;
    let mut response = private_json(json!({ "detail": SENT }));
    if let Some(nonce) = nonce {
        let secure = auth.sessions().is_none_or(|s| s.config().secure);
        let ttl = passwordless.config().code_ttl.as_secs() as i64;
        let cookie = cookie::Cookie::build((browser_cookie(&auth), nonce))
            .http_only(true)
            .secure(secure)
            .path("/")
            .same_site(cookie::SameSite::Lax)
            .max_age(time::Duration::seconds(ttl))
            .build();
        if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(with_limit(response, allowed))
}

/// Six ASCII digits, else a 422 entry.
fn code_of(fields: &mut Fields) -> Option<String> {
    let code = fields.string("code")?;
    let code = code.trim().to_owned();
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Some(code)
    } else {
        fields.issues().push(ValidationIssue::body(
            "code",
            "value_error",
            "the code is six digits",
        ));
        None
    }
}

/// `POST /otp/verify {email | phone, code, response?}`.
async fn verify<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let passwordless = service(&auth)?;
    let mut fields = Fields::json(&headers, &body)?;
    let ending = ending(&auth, fields.optional("response").as_deref(), &headers)?;
    let allowed = auth
        .rate_limiter()
        .enforce("otp_verify", &format!("ip:{}", ip_key(client.ip)))
        .await?;
    let address = address_of(passwordless, &mut fields);
    let code = code_of(&mut fields);
    let (address, code) = fields.finish(address.zip(code))?;
    let verified = passwordless.verify_code(&address, &code, &client).await?;
    let method = ("otp", address.medium().as_str());
    let response =
        signed_in_or_challenged(&auth, verified, ending, method, (&client, &headers)).await?;
    Ok(with_limit(response, allowed))
}

/// A magic link's token and ending, from a body or a query.
async fn link<U: UserRecord>(
    auth: &CrudAuth<U>,
    client: &ClientMeta,
    headers: &HeaderMap,
    token: String,
    ending: Ending,
) -> Result<Response, AuthError> {
    let passwordless = service(auth)?;
    let allowed = auth
        .rate_limiter()
        .enforce("magic_link_verify", &format!("ip:{}", ip_key(client.ip)))
        .await?;
    let nonce = cookie(headers, browser_cookie(auth));
    let verified = passwordless.verify_link(&token, nonce, client).await?;
    let response = signed_in_or_challenged(
        auth,
        verified,
        ending,
        ("magic_link", "email"),
        (client, headers),
    )
    .await?;
    Ok(with_limit(response, allowed))
}

/// `POST /magic-link/verify {token, response?}`.
async fn link_post<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AuthError> {
    let mut fields = Fields::json(&headers, &body)?;
    let ending = ending(&auth, fields.optional("response").as_deref(), &headers)?;
    let token = fields.string("token");
    let token = fields.finish(token)?;
    link(&auth, &client, &headers, token, ending).await
}

#[derive(serde::Deserialize)]
struct LinkQuery {
    token: String,
    response: Option<String>,
}

/// `GET /magic-link/verify?token=..&response=..`.
async fn link_get<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    client: ClientMeta,
    headers: HeaderMap,
    query: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AuthError> {
    let Ok(Query(query)) = query else {
        return Err(AuthError::Validation(vec![ValidationIssue {
            kind: "missing",
            loc: vec!["query".into(), "token".into()],
            msg: "Field required".into(),
            ctx: None,
        }]));
    };
    let ending = ending(&auth, query.response.as_deref(), &headers)?;
    // A link opened by a GET that would sign the browser in: anyone's link, sent to a
    // victim, would sign the victim into the sender's account (login CSRF), which only the
    // same-browser cookie rules out. Otherwise the app's page posts the token.
    let sets_cookies = ending == Ending::Session
        || auth
            .tokens()
            .is_some_and(|t| t.config().refresh == crate::tokens::RefreshMode::Cookie);
    if sets_cookies && !service(&auth)?.config().same_browser {
        return Err(AuthError::BadRequest(
            "Open the link through the app's sign-in page (it posts the token).",
        ));
    }
    link(&auth, &client, &headers, query.token, ending).await
}

/// Ends a proven sign-in: the session or tokens, unless the account has a second factor
/// (and this device is not remembered): then its challenge, which `/mfa/verify` completes
/// over the same ending. The code's lockout attempt is recorded as a success, and the
/// client remembered, only once the sign-in completes; before a challenge the attempt is
/// given back, as a right password's is.
async fn signed_in_or_challenged<U: UserRecord>(
    auth: &CrudAuth<U>,
    proven: Proven<U>,
    ending: Ending,
    method: (&str, &str),
    (client, headers): (&ClientMeta, &HeaderMap),
) -> Result<Response, AuthError> {
    let Proven {
        verified,
        attempt,
        pending,
    } = proven;
    #[cfg(feature = "mfa")]
    if let Some(mfa) = auth.mfa() {
        use crate::mfa::Origin;
        let origin = match ending {
            Ending::Session => Origin::Session {
                provider: None,
                redirect_to: None,
            },
            Ending::Token => Origin::Bearer {
                scopes: Vec::new(),
                pkce: None,
            },
        };
        let step = (attempt, pending);
        let due = super::mfa::challenge_or_success(auth, mfa, &verified, step, origin, headers);
        return match due.await? {
            Some(challenge) => Ok(challenge),
            None => signed_in(auth, verified, ending, method, (client, headers)).await,
        };
    }
    // Without a second factor the sign-in completes now.
    if let Some(attempt) = attempt {
        auth.core().lockout.succeeded(attempt).await;
    }
    let id = verified.user.user_id();
    auth.login()
        .confirm_success(&id, verified.epoch, pending)
        .await;
    signed_in(auth, verified, ending, method, (client, headers)).await
}
