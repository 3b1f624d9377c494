//! The demo's passkeys: on, with the credentials in the `crudauth_passkeys` table of the
//! demo's database, the relying party read off `CRUDAUTH_PASSKEY_ORIGIN` (default: the
//! demo's own address, with a loopback IP written `localhost`, since a relying party id is
//! a domain); and two commands that run the JSON ceremonies against a running demo with the
//! tests' software authenticator (real keys and signatures), until the browser pages of a
//! later issue can:
//!
//! - `crudauth-demo passkey-register --server URL --username NAME [--name LABEL]` signs in
//!   with the password (read from the first line of standard input), elevates the session
//!   with it (sudo) and registers a passkey (the account's address must be verified);

//! - `crudauth-demo passkey-login --server URL [--username NAME]` signs in with it and prints
//!   the token pair (without `--username`, as a discoverable credential).
//!
//! The authenticator (its private keys) is kept in `--authenticator FILE` (default
//! `crudauth-demo-authenticator.json`, written with 0600 permissions).

use std::sync::Arc;

use crudauth::passkey::PasskeyConfig;
use crudauth_sea::{PASSKEY_TABLE, SeaPasskeyStore};
use crudauth_tests::passkey_client::SoftAuthenticator;
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};

/// The origin a URL's pages run under, a loopback IP written `localhost`.
fn origin_of(url: &str) -> Result<url::Url, String> {
    let mut url = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    if let Some(url::Host::Ipv4(ip)) = url.host()
        && ip.is_loopback()
    {
        url.set_host(Some("localhost")).map_err(|e| e.to_string())?;
    }
    if url.host_str() == Some("[::1]") {
        url.set_host(Some("localhost")).map_err(|e| e.to_string())?;
    }
    url.set_path("");
    Ok(url)
}

/// The passkey settings, the table created if missing.
pub async fn config(
    own_url: &str,
    db: &DatabaseConnection,
) -> Result<PasskeyConfig, Box<dyn std::error::Error>> {
    let origin = match std::env::var("CRUDAUTH_PASSKEY_ORIGIN") {
        Ok(origin) => origin_of(&origin)?,
        Err(_) => origin_of(own_url)?,
    };
    let rp_id = origin.host_str().unwrap_or("localhost").to_owned();
    let origin = origin.as_str().trim_end_matches('/').to_owned();
    SeaPasskeyStore::create_table(db, PASSKEY_TABLE).await?;
    let store = Arc::new(SeaPasskeyStore::new(db.clone(), PASSKEY_TABLE));
    tracing::info!(%rp_id, %origin, "passkeys on");
    Ok(PasskeyConfig::new(rp_id, origin)
        .rp_name("crudauth demo")
        .store(store))
}

struct Options {
    server: String,
    username: Option<String>,
    name: Option<String>,
    file: std::path::PathBuf,
    origin: Option<String>,
}

fn options(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        server: "http://127.0.0.1:8000".into(),
        username: None,
        name: None,
        file: "crudauth-demo-authenticator.json".into(),
        origin: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--server" => o.server = value()?,
            "--username" => o.username = Some(value()?),
            "--name" => o.name = Some(value()?),
            "--authenticator" => o.file = value()?.into(),
            "--origin" => o.origin = Some(value()?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

/// Runs `passkey-register` or `passkey-login` when the command line names one.
pub async fn command(args: &[String]) -> Option<Result<(), String>> {
    let (command, rest) = args.split_first()?;
    let run = match command.as_str() {
        "passkey-register" => true,
        "passkey-login" => false,
        _ => return None,
    };
    Some(match options(rest) {
        Ok(o) if run => register(o).await,
        Ok(o) => login(o).await,
        Err(e) => Err(format!(
            "{e}\nusage: crudauth-demo passkey-register|passkey-login --server URL [--username NAME] \
             [--name LABEL] [--authenticator FILE] [--origin URL]"
        )),
    })
}

fn load(file: &std::path::Path) -> Result<SoftAuthenticator, String> {
    match std::fs::read(file) {
        Ok(bytes) => {
            let value: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
            SoftAuthenticator::from_json(&value)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SoftAuthenticator::new()),
        Err(e) => Err(format!("{}: {e}", file.display())),
    }
}

fn save(file: &std::path::Path, device: &SoftAuthenticator) -> Result<(), String> {
    use std::io::Write;
    let text = serde_json::to_vec_pretty(&device.to_json()?).map_err(|e| e.to_string())?;
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    let mut f = open
        .open(file)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    f.write_all(&text)
        .map_err(|e| format!("{}: {e}", file.display()))
}

/// The session cookie a response sets (under its plain or `__Host-` name).
fn session_cookie(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next()?.split_once('='))
        .find(|(name, _)| name.trim().ends_with("session_id"))
        .map(|(_, value)| value.to_owned())
}

async fn post(
    client: &reqwest::Client,
    url: String,
    body: Value,
    session: Option<(&str, &str)>,
) -> Result<Value, String> {
    let mut request = client.post(&url).json(&body);
    if let Some((id, csrf)) = session {
        request = request
            .header("cookie", format!("__Host-session_id={id}; session_id={id}"))
            .header("x-csrf-token", csrf);
    }
    let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let json: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!("{url}: {status} {json}"));
    }
    Ok(json)
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())
}

async fn register(o: Options) -> Result<(), String> {
    let username = o
        .username
        .clone()
        .ok_or("passkey-register needs --username")?;
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .map_err(|e| e.to_string())?;
    let password = password.trim_end_matches(['\r', '\n']);
    let client = client()?;
    let server = o.server.trim_end_matches('/');
    let origin = origin_of(o.origin.as_deref().unwrap_or(server))?;
    let origin = origin.as_str().trim_end_matches('/');
    let response = client
        .post(format!("{server}/login"))
        .form(&[("username", username.as_str()), ("password", password)])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let id = session_cookie(response.headers());
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let (Some(id), Some(csrf)) = (id, body["csrf_token"].as_str()) else {
        return Err(format!("sign-in refused: {body}"));
    };
    // Adding a passkey to an account with a password needs the password again (sudo); the
    // elevated session has a new id.
    let response = client
        .post(format!("{server}/sudo"))
        .header("cookie", format!("__Host-session_id={id}; session_id={id}"))
        .header("x-csrf-token", csrf)
        .json(&json!({ "password": password }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let Some(id) = session_cookie(response.headers()) else {
        let body: Value = response.json().await.unwrap_or(Value::Null);
        return Err(format!("sudo refused: {body}"));
    };
    let session = Some((id.as_str(), csrf));

    let url = format!("{server}/passkeys/register/start");
    let started = post(&client, url, json!({}), session).await?;
    let mut device = load(&o.file)?;
    let credential = device.register(origin, &started["options"])?;
    save(&o.file, &device)?;
    let url = format!("{server}/passkeys/register/finish");
    let body = json!({ "ceremony": started["ceremony"], "credential": credential, "name": o.name });
    let info = post(&client, url, body, session).await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&info).unwrap_or_default()
    );
    Ok(())
}

async fn login(o: Options) -> Result<(), String> {
    let client = client()?;
    let server = o.server.trim_end_matches('/');
    let origin = origin_of(o.origin.as_deref().unwrap_or(server))?;
    let origin = origin.as_str().trim_end_matches('/');
    let mut device = load(&o.file)?;
    if device.credential_ids().is_empty() {
        return Err(format!(
            "{} holds no passkey: run passkey-register first",
            o.file.display()
        ));
    }
    let url = format!("{server}/passkeys/login/start");
    let started = post(&client, url, json!({ "username": o.username }), None).await?;
    let credential = device.sign(origin, &started["options"])?;
    save(&o.file, &device)?; // the signature counter moved
    let url = format!("{server}/passkeys/login/finish");
    let body =
        json!({ "ceremony": started["ceremony"], "credential": credential, "response": "token" });
    let pair = post(&client, url, body, None).await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&pair).unwrap_or_default()
    );
    Ok(())
}
