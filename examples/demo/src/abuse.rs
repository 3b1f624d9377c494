//! The demo's abuse protection, configured from the environment.
//!
//! Disposable addresses are refused by default (the shipped list of the
//! `disposable-email` feature): `CRUDAUTH_DISPOSABLE_BLOCK` adds domains and
//! `CRUDAUTH_DISPOSABLE_ALLOW` makes exceptions (comma-separated);
//! `CRUDAUTH_DISPOSABLE_EMAILS=off` switches the blocking off.
//!
//! A CAPTCHA is on when `CRUDAUTH_CAPTCHA_PROVIDER` is `turnstile`, `hcaptcha` or
//! `recaptcha`, with:
//!
//! - `CRUDAUTH_CAPTCHA_SECRET` (required): the provider's secret key;
//! - `CRUDAUTH_CAPTCHA_VERIFY_URL`: another siteverify URL (a proxy, or a local fake);
//! - `CRUDAUTH_CAPTCHA_ACTIONS`: the actions always asked, comma-separated, of
//!   `register`, `password_reset`, `login`, `passwordless` (default
//!   `register,password_reset`; empty for none);
//! - `CRUDAUTH_CAPTCHA_AFTER_FAILED_LOGINS`: ask on sign-in once a client address has
//!   failed this many logins within 15 minutes;
//! - `CRUDAUTH_CAPTCHA_HOSTNAME`: refuse tokens solved on another site;
//! - `CRUDAUTH_CAPTCHA_MIN_SCORE`: reCAPTCHA v3's threshold (default 0.5);
//! - `CRUDAUTH_CAPTCHA_FAIL_OPEN=1`: let requests through (with a warning) when the
//!   verifier cannot be reached, instead of 503.
//!
//! Clients send the token in `X-Captcha-Token` or the body field `captcha_token` (or the
//! widget's own field in an HTML form).

use std::time::Duration;

use crudauth::captcha::siteverify::{HCaptcha, RecaptchaV3, Turnstile};
use crudauth::captcha::{CaptchaAction, CaptchaConfig};
use crudauth::disposable::DisposableEmails;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn list(name: &str) -> Vec<String> {
    env(name)
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The disposable-email list, or `None` when switched off.
pub fn disposable() -> Option<DisposableEmails> {
    if env("CRUDAUTH_DISPOSABLE_EMAILS").is_some_and(|v| v.eq_ignore_ascii_case("off")) {
        tracing::warn!("disposable email addresses are accepted (CRUDAUTH_DISPOSABLE_EMAILS=off)");
        return None;
    }
    Some(
        DisposableEmails::default()
            .block(list("CRUDAUTH_DISPOSABLE_BLOCK"))
            .allow(list("CRUDAUTH_DISPOSABLE_ALLOW")),
    )
}

/// The CAPTCHA the environment names, or `None`.
pub fn captcha() -> Result<Option<CaptchaConfig>, Box<dyn std::error::Error>> {
    let Some(provider) = env("CRUDAUTH_CAPTCHA_PROVIDER") else {
        return Ok(None);
    };
    let secret = env("CRUDAUTH_CAPTCHA_SECRET")
        .ok_or("CRUDAUTH_CAPTCHA_PROVIDER needs CRUDAUTH_CAPTCHA_SECRET")?;
    let url = env("CRUDAUTH_CAPTCHA_VERIFY_URL");
    let hostname = env("CRUDAUTH_CAPTCHA_HOSTNAME");
    let mut config = match provider.as_str() {
        "turnstile" => {
            let mut v = Turnstile::new(secret);
            if let Some(url) = url {
                v = v.verify_url(url);
            }
            if let Some(host) = hostname {
                v = v.hostname(host);
            }
            CaptchaConfig::new(v)
        }
        "hcaptcha" => {
            let mut v = HCaptcha::new(secret);
            if let Some(url) = url {
                v = v.verify_url(url);
            }
            if let Some(host) = hostname {
                v = v.hostname(host);
            }
            CaptchaConfig::new(v)
        }
        "recaptcha" => {
            let mut v = RecaptchaV3::new(secret);
            if let Some(url) = url {
                v = v.verify_url(url);
            }
            if let Some(host) = hostname {
                v = v.hostname(host);
            }
            if let Some(score) = env("CRUDAUTH_CAPTCHA_MIN_SCORE") {
                v = v.min_score(
                    score
                        .parse()
                        .map_err(|_| "CRUDAUTH_CAPTCHA_MIN_SCORE: a number")?,
                );
            }
            CaptchaConfig::new(v)
        }
        other => {
            return Err(format!("CRUDAUTH_CAPTCHA_PROVIDER: unknown provider `{other}`").into());
        }
    };
    let actions = match std::env::var("CRUDAUTH_CAPTCHA_ACTIONS") {
        Ok(_) => list("CRUDAUTH_CAPTCHA_ACTIONS"),
        Err(_) => vec!["register".into(), "password_reset".into()],
    };
    for action in actions {
        let action = match action.as_str() {
            "register" => CaptchaAction::Register,
            "password_reset" => CaptchaAction::PasswordReset,
            "login" => CaptchaAction::Login,
            "passwordless" => CaptchaAction::Passwordless,
            other => {
                return Err(format!("CRUDAUTH_CAPTCHA_ACTIONS: unknown action `{other}`").into());
            }
        };
        config = config.always(action);
    }
    if let Some(n) = env("CRUDAUTH_CAPTCHA_AFTER_FAILED_LOGINS") {
        let n = n
            .parse()
            .map_err(|_| "CRUDAUTH_CAPTCHA_AFTER_FAILED_LOGINS: a whole number")?;
        config = config.after_failed_logins(n, Duration::from_secs(15 * 60));
    }
    if env("CRUDAUTH_CAPTCHA_FAIL_OPEN").is_some_and(|v| v == "1" || v == "true") {
        config = config.fail_open(true);
    }
    tracing::info!(%provider, "CAPTCHA on");
    Ok(Some(config))
}
