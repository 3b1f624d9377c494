//! The builder's device login switch (feature `device-login`).

use super::CrudAuthBuilder;
use crate::device_login::DeviceLoginConfig;
use crate::user::UserRecord;

impl<U: UserRecord> CrudAuthBuilder<U> {
    /// Turns on the CLI device login: `POST /auth/cli-login`, `GET`, `PATCH` and `DELETE
    /// /auth/cli-login/{code}`, and the `cli_login_start`, `cli_login_poll` and
    /// `cli_login_decide` rate limits. The CLI is handed a token pair, so `build` refuses
    /// it without the bearer transport.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |_| { let b = crudauth::doc_fixture::builder().await;
    /// use crudauth::device_login::DeviceLoginConfig;
    /// let config = DeviceLoginConfig { approve_url: "https://app.example.com/cli".into(), ..Default::default() };
    /// assert!(b.device_login(config).build().is_err()); // no {code} in the approve URL
    /// # Ok(()) });
    /// ```
    pub fn device_login(mut self, config: DeviceLoginConfig) -> Self {
        self.methods.device_login = Some(config);
        self
    }
}
