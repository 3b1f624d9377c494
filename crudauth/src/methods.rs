//! The optional sign-in methods' services (each behind its cargo feature), as the facade
//! holds them; the builder makes them (`builder::methods`).

/// The services of the configured sign-in methods.
pub(crate) struct Methods<U> {
    #[cfg(feature = "oauth")]
    pub oauth: Option<crate::oauth::OAuth<U>>,
    #[cfg(feature = "mfa")]
    pub mfa: Option<crate::mfa::Mfa<U>>,
    #[cfg(feature = "passkeys")]
    pub passkeys: Option<crate::passkey::Passkeys<U>>,
    #[cfg(feature = "passwordless")]
    pub passwordless: Option<crate::passwordless::Passwordless<U>>,
    #[cfg(feature = "api-keys")]
    pub api_keys: Option<crate::api_key::ApiKeys<U>>,
    #[cfg(feature = "admin")]
    pub impersonation: Option<crate::admin::Impersonation<U>>,
    #[cfg(feature = "device-login")]
    pub device_login: Option<crate::device_login::DeviceLogin<U>>,
    #[cfg(feature = "admin")]
    pub users_admin: Option<crate::admin::UsersAdmin<U>>,
    pub(crate) _user: std::marker::PhantomData<fn() -> U>,
}
