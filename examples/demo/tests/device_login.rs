//! The demo's CLI device login end to end: `crudauth-demo login` as a child process, its
//! challenge approved over HTTP by a signed-in browser user typing the printed code, the
//! pair kept in a 0600 file that `crudauth-demo whoami` uses (and refreshes).

mod common;

use std::io::BufRead;
use std::time::Duration;

use serde_json::{Value, json};

fn cli(args: &[&str], config_home: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(common::demo_binary());
    command
        .args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_cli_signs_in_through_a_browser_user_and_keeps_its_pair_private() {
    let port = common::free_port();
    let dir = std::env::temp_dir().join(format!("crudauth-demo-dl-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("demo.db").display());
    let outbox = dir.join("mail.jsonl");
    let _demo = common::spawn(
        port,
        &["--database", &url],
        &[
            ("CRUDAUTH_DEMO_OUTBOX", outbox.to_str().unwrap()),
            ("CRUDAUTH_DEVICE_LOGIN_INTERVAL", "1"),
        ],
    )
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let pw = "erin has a long pass";
    let r = http
        .post(format!("{base}/register"))
        .json(&json!({ "email": "erin@example.com", "username": "erin", "password": pw }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = http
        .post(format!("{base}/login"))
        .form(&[("username", "erin"), ("password", pw)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let session = common::cookie_of(&r, "__Host-session_id")
        .or_else(|| common::cookie_of(&r, "session_id"))
        .expect("a session cookie");
    let csrf = r.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let cookie = format!("__Host-session_id={session}; session_id={session}");

    let config_home = dir.join("config");
    let mut login = cli(&["login", "--server", &base], &config_home)
        .spawn()
        .unwrap();
    let stdout = login.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines_tx.send(line);
        }
    });
    let mut printed = Vec::new();
    while printed.len() < 2 {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("login prints its code and URL");
        printed.push(line);
    }
    let user_code = printed[0]
        .strip_prefix("Your code: ")
        .expect("the code")
        .to_owned();
    let approve_url = printed[1].rsplit(' ').next().unwrap().to_owned();
    assert!(
        approve_url.starts_with(&format!("{base}/auth/cli-login/")),
        "{approve_url}"
    );

    // The browser user reads the challenge (who asks, from where), then approves it.
    let r = http
        .get(&approve_url)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let view: Value = r.json().await.unwrap();
    assert_eq!(view["status"], "pending");
    assert_eq!(view["client_ip"], "127.0.0.1");
    assert!(
        view["user_agent"]
            .as_str()
            .unwrap()
            .starts_with("crudauth-demo-cli/")
    );
    let r = http
        .patch(&approve_url)
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({ "user_code": user_code }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);

    let status = tokio::task::spawn_blocking(move || {
        for _ in 0..300 {
            if let Some(status) = login.try_wait().unwrap() {
                return Some((status, login));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = login.kill();
        None
    })
    .await
    .unwrap();
    let (status, login) = status.expect("login ends once approved");
    let err = login.wait_with_output().unwrap().stderr;
    assert!(status.success(), "login: {}", String::from_utf8_lossy(&err));

    let file = config_home.join("crudauth-demo").join("token.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the token file is private");
        let dir_mode = std::fs::metadata(file.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }

    let out = cli(&["whoami", "--server", &base], &config_home)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "whoami: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let me: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(me["username"], "erin");

    // An access token that no longer works: whoami refreshes once and carries on.
    let mut kept: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let refresh_before = kept["refresh_token"].clone();
    kept["access_token"] = json!("not.a.token");
    std::fs::write(&file, serde_json::to_vec(&kept).unwrap()).unwrap();
    let out = cli(&["whoami", "--server", &base], &config_home)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "whoami: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kept: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_ne!(
        kept["refresh_token"], refresh_before,
        "the pair was rotated"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "still private after the refresh");
    }
    let _ = std::fs::remove_dir_all(dir);
}
