//! The demo's CLI device login: on in the server (`/auth/cli-login`, the polling interval
//! from `CRUDAUTH_DEVICE_LOGIN_INTERVAL`, in seconds, default 5), and the CLI side as two
//! commands against a running demo:
//!
//! - `crudauth-demo login --server URL` starts a challenge, prints the user code and the
//!   approve URL, polls (every `interval` seconds, 5 more after each `slow_down`, as RFC
//!   8628 asks) until a signed-in browser user approves it with the code
//!   (`PATCH /auth/cli-login/{code} {"user_code": ..}`), and keeps the token pair in
//!   `$XDG_CONFIG_HOME/crudauth-demo/token.json` (or `~/.config/crudauth-demo/token.json`),
//!   the directory created 0700 and the file 0600;
//! - `crudauth-demo whoami --server URL` calls `/me` with it, refreshing the pair once
//!   through `/refresh` when the access token has expired.
//!
//! The approve URL is the JSON route itself (`GET /auth/cli-login/{code}` answers a
//! signed-in user with the requesting client's address and user agent): the demo has no
//! approve page yet (a later issue adds pages).

use std::path::PathBuf;
use std::time::Duration;

use crudauth::device_login::DeviceLoginConfig;
use serde_json::{Value, json};

/// The server's settings: the defaults, the interval from the environment.
pub fn config() -> Result<DeviceLoginConfig, String> {
    let mut config = DeviceLoginConfig::default();
    if let Ok(secs) = std::env::var("CRUDAUTH_DEVICE_LOGIN_INTERVAL") {
        let secs: u64 = secs
            .parse()
            .map_err(|e| format!("CRUDAUTH_DEVICE_LOGIN_INTERVAL={secs}: {e}"))?;
        config.interval = Duration::from_secs(secs);
    }
    Ok(config)
}

/// Runs `login` or `whoami` when the command line names one.
pub async fn command(args: &[String]) -> Option<Result<(), String>> {
    let (command, rest) = args.split_first()?;
    let login = match command.as_str() {
        "login" => true,
        "whoami" => false,
        _ => return None,
    };
    let server = match server_of(rest) {
        Ok(server) => server,
        Err(e) => {
            return Some(Err(format!(
                "{e}\nusage: crudauth-demo login|whoami --server URL"
            )));
        }
    };
    Some(if login {
        run_login(&server).await
    } else {
        whoami(&server).await
    })
}

fn server_of(args: &[String]) -> Result<String, String> {
    let mut server = "http://127.0.0.1:8000".to_owned();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--server" => server = it.next().cloned().ok_or("--server needs a value")?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(server.trim_end_matches('/').to_owned())
}

/// Where the pair is kept: `$XDG_CONFIG_HOME/crudauth-demo/token.json` (an absolute
/// `XDG_CONFIG_HOME` only, as the XDG spec says), else under `~/.config`.
fn token_file() -> Result<PathBuf, String> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute());
    let base = match xdg {
        Some(dir) => dir,
        None => {
            let home = std::env::var_os("HOME").ok_or("neither XDG_CONFIG_HOME nor HOME is set")?;
            PathBuf::from(home).join(".config")
        }
    };
    Ok(base.join("crudauth-demo").join("token.json"))
}

/// Writes the pair: the directory 0700 (also when it existed before), the file 0600. The
/// pair goes to a new file first (`create_new`: never through a symlink someone planted)
/// that is then renamed over `token.json` (a rename replaces a symlink, it does not follow
/// it), so a reader sees the old pair or the new one, never half of one.
fn save(server: &str, pair: &Value) -> Result<PathBuf, String> {
    use std::io::Write;
    let file = token_file()?;
    let dir = file.parent().ok_or("no directory")?;
    let shown = |e: std::io::Error| format!("{}: {e}", dir.display());
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(shown)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::symlink_metadata(dir)
            .map_err(shown)?
            .file_type()
            .is_symlink()
        {
            return Err(format!(
                "{}: a symlink, not a directory of yours",
                dir.display()
            ));
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(shown)?;
    }
    let body = json!({
        "server": server,
        "access_token": pair["access_token"],
        "refresh_token": pair["refresh_token"],
        "token_type": pair["token_type"],
    });
    let text = serde_json::to_vec_pretty(&body).map_err(|e| e.to_string())?;
    let fresh = dir.join(format!(
        ".token.json.{}",
        &crudauth::generate_secret_key()[..16]
    ));
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    let written = open.open(&fresh).and_then(|mut f| {
        f.write_all(&text)?;
        f.sync_all()
    });
    let renamed = written.and_then(|()| std::fs::rename(&fresh, &file));
    if let Err(e) = renamed {
        let _ = std::fs::remove_file(&fresh);
        return Err(format!("{}: {e}", file.display()));
    }
    Ok(file)
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent(concat!("crudauth-demo-cli/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())
}

async fn run_login(server: &str) -> Result<(), String> {
    use std::io::Write;
    let http = client()?;
    let response = http
        .post(format!("{server}/auth/cli-login"))
        .send()
        .await
        .map_err(|e| format!("{server}: {e}"))?;
    let status = response.status();
    let started: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!("could not start: {status} {started}"));
    }
    let (Some(code), Some(secret), Some(approve_url), Some(user_code)) = (
        started["code"].as_str(),
        started["secret"].as_str(),
        started["approve_url"].as_str(),
        started["user_code"].as_str(),
    ) else {
        return Err(format!("unexpected answer: {started}"));
    };
    let approve_url = if approve_url.starts_with('/') {
        format!("{server}{approve_url}")
    } else {
        approve_url.to_owned()
    };
    let mut interval = started["interval"].as_u64().unwrap_or(5).max(1);
    let expires_in = started["expires_in"].as_u64().unwrap_or(300);
    println!("Your code: {user_code}");
    println!("Approve this sign-in while signed in in your browser: {approve_url}");
    println!(
        "(PATCH it with {{\"user_code\": \"{user_code}\"}}; the code expires in {expires_in} s)"
    );
    let _ = std::io::stdout().flush();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(expires_in);
    let poll = format!("{server}/auth/cli-login/{code}");
    loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        if tokio::time::Instant::now() > deadline {
            return Err("the code expired before anyone approved it".into());
        }
        // The secret in a header, not the query string (which proxies log).
        let response = http
            .get(&poll)
            .header("x-cli-login-secret", secret)
            .send()
            .await
            .map_err(|e| format!("{poll}: {e}"))?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match (status, body["status"].as_str()) {
            (200, Some("pending")) => {}
            (429, Some("slow_down")) => interval += 5, // RFC 8628 §3.5
            (429, _) => interval = interval.saturating_mul(2).min(60),
            (200, Some("approved")) => {
                let file = save(server, &body)?;
                println!("Signed in; the token pair is in {}", file.display());
                return Ok(());
            }
            (403, _) => return Err("the sign-in was rejected in the browser".into()),
            (410, _) => return Err("the code expired before anyone approved it".into()),
            _ => return Err(format!("unexpected answer: {status} {body}")),
        }
    }
}

async fn whoami(server: &str) -> Result<(), String> {
    let file = token_file()?;
    let text = std::fs::read(&file)
        .map_err(|e| format!("{}: {e} (run `crudauth-demo login` first)", file.display()))?;
    let kept: Value = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
    if kept["server"].as_str() != Some(server) {
        return Err(format!(
            "{} holds a sign-in for {}",
            file.display(),
            kept["server"]
        ));
    }
    let http = client()?;
    let me = |token: String| {
        let http = http.clone();
        async move {
            let response = http
                .get(format!("{server}/me"))
                .bearer_auth(token)
                .send()
                .await
                .map_err(|e| format!("{server}/me: {e}"))?;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            Ok::<_, String>((status, body))
        }
    };
    let access = kept["access_token"].as_str().unwrap_or_default().to_owned();
    let (mut status, mut body) = me(access).await?;
    if status == 401 {
        // Expired (or revoked): one refresh, then one more try.
        let response = http
            .post(format!("{server}/refresh"))
            .json(&json!({ "refresh_token": kept["refresh_token"] }))
            .send()
            .await
            .map_err(|e| format!("{server}/refresh: {e}"))?;
        let refreshed = response.status();
        let pair: Value = response.json().await.unwrap_or(Value::Null);
        if !refreshed.is_success() {
            return Err(format!(
                "signed out ({refreshed}): run `crudauth-demo login` again"
            ));
        }
        save(server, &pair)?;
        let access = pair["access_token"].as_str().unwrap_or_default().to_owned();
        (status, body) = me(access).await?;
    }
    if status != 200 {
        return Err(format!("/me answered {status} {body}"));
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&body).unwrap_or_default()
    );
    Ok(())
}
