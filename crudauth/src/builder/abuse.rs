//! The builder's abuse protection: disposable-email blocking and the CAPTCHA rule.

use std::sync::Arc;

use super::CrudAuthBuilder;
use crate::captcha::{CaptchaConfig, CaptchaGuard};
use crate::disposable::DisposableEmails;
use crate::error::ConfigError;
use crate::store::Store;
use crate::user::UserRecord;

/// The abuse settings given to the builder.
#[derive(Default)]
pub(super) struct Settings {
    disposable: Option<DisposableEmails>,
    captcha: Option<CaptchaConfig>,
}

impl Settings {
    /// Validates the settings against the registration allow-list and builds the parts.
    pub(super) fn build(
        self,
        register_extra_fields: &std::collections::BTreeSet<String>,
        store: &Arc<dyn Store>,
    ) -> Result<(Option<DisposableEmails>, Option<CaptchaGuard>), ConfigError> {
        let captcha = match self.captcha {
            Some(config) => {
                config.validate()?;
                if let Some(field) = config.fields().find(|f| register_extra_fields.contains(*f)) {
                    return Err(ConfigError::Invalid(format!(
                        "register_extra_fields: `{field}` carries the CAPTCHA token and can never be a user column"
                    )));
                }
                Some(CaptchaGuard::new(config, store.clone()))
            }
            None => None,
        };
        Ok((self.disposable, captcha))
    }
}

impl<U: UserRecord> CrudAuthBuilder<U> {
    /// Refuses disposable email addresses wherever an address enters (`/register`, the email
    /// change and `PATCH /users/me`, an OAuth or passwordless sign-up): the 422 entry of the
    /// email field, before any account is looked up. See [`crate::disposable`].
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// use crudauth::disposable::DisposableEmails;
    /// let auth = b
    ///     .disposable_emails(DisposableEmails::default().block(["trash.example"]).allow(["qa.example"]))
    ///     .build()?;
    /// # Ok(()) });
    /// ```
    pub fn disposable_emails(mut self, list: DisposableEmails) -> Self {
        self.abuse.disposable = Some(list);
        self
    }

    /// Asks for a CAPTCHA by the config's rule (see [`crate::captcha`]). `build` refuses a
    /// config without a rule, a malformed field name, and a token field that is also in
    /// `register_extra_fields`.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| {
    /// use crudauth::captcha::{CaptchaAction, CaptchaConfig};
    /// # struct V;
    /// # #[async_trait::async_trait]
    /// # impl crudauth::captcha::Captcha for V { fn provider(&self) -> &'static str { "v" }
    /// #   async fn verify(&self, _: &str, _: CaptchaAction, _: Option<std::net::IpAddr>)
    /// #   -> Result<crudauth::captcha::CaptchaVerdict, crudauth::captcha::CaptchaUnavailable> {
    /// #   Ok(crudauth::captcha::CaptchaVerdict::Passed) } }
    /// # let b = crudauth::doc_fixture::builder().await;
    /// let auth = b.captcha(CaptchaConfig::new(V).always(CaptchaAction::Register)).build()?;
    /// # let b = crudauth::doc_fixture::builder().await;
    /// assert!(b.captcha(CaptchaConfig::new(V)).build().is_err()); // no rule
    /// # let b = crudauth::doc_fixture::builder().await;
    /// let clash = b
    ///     .register_extra_fields(["captcha_token"])
    ///     .captcha(CaptchaConfig::new(V).always(CaptchaAction::Register));
    /// assert!(clash.build().is_err());
    /// # Ok(()) });
    /// ```
    pub fn captcha(mut self, config: CaptchaConfig) -> Self {
        self.abuse.captcha = Some(config);
        self
    }
}
