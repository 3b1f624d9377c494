//! The demo's passkeys end to end: `crudauth-demo passkey-register` and `passkey-login`
//! (the software authenticator, kept in a 0600 file) against a running demo, the token pair
//! they print opening `/whoami`.

mod common;

use serde_json::{Value, json};

fn run(args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(common::demo_binary())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_demo_registers_a_passkey_and_signs_in_with_it_from_the_command_line() {
    let port = common::free_port();
    let dir = std::env::temp_dir().join(format!("crudauth-demo-pk-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("demo.db").display());
    let outbox = dir.join("mail.jsonl");
    let outbox = outbox.to_str().unwrap();
    let _demo = common::spawn(
        port,
        &["--database", &url],
        &[("CRUDAUTH_DEMO_OUTBOX", outbox)],
    )
    .await;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let pw = "dora has a long pass";
    let r = http
        .post(format!("{base}/register"))
        .json(&json!({ "email": "dora@example.com", "username": "dora", "password": pw }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // A passkey needs a verified address: the link of the registration mail.
    let token = common::last_token(outbox, "verify_email").await;
    let r = http
        .post(format!("{base}/email/verify-confirm"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let file = dir.join("authenticator.json");
    let file = file.to_str().unwrap();
    let common = ["--server", base.as_str(), "--authenticator", file];
    let (ok, out, err) = run(
        &[
            &["passkey-register", "--username", "dora", "--name", "Laptop"][..],
            &common[..],
        ]
        .concat(),
        &format!("{pw}\n"),
    );
    assert!(ok, "passkey-register: {out} {err}");
    let info: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["name"], "Laptop");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the authenticator's keys are private");
    }
    // Usernameless, then username first: each prints a token pair that opens /whoami.
    for extra in [&[][..], &["--username", "dora"][..]] {
        let (ok, out, err) = run(&[&["passkey-login"][..], &common[..], extra].concat(), "");
        assert!(ok, "passkey-login: {out} {err}");
        let pair: Value = serde_json::from_str(&out).unwrap();
        let access = pair["access_token"].as_str().unwrap();
        let me: Value = http
            .get(format!("{base}/whoami"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["via"], "bearer", "{me}");
    }
    // A wrong password registers nothing.
    let (ok, _, err) = run(
        &[&["passkey-register", "--username", "dora"][..], &common[..]].concat(),
        "not the password\n",
    );
    assert!(!ok && err.contains("sign-in refused"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
