//! The SMTP sender against a local SMTP sink started by the test itself.

use std::sync::{Arc, Mutex};

use crudauth::delivery::{EmailContext, EmailMessage, EmailSender, MessageKind};
use crudauth::smtp::{SmtpConfig, SmtpSecurity, SmtpSender};
use crudauth_tests::http::{FRONTEND, Req, app_with};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the sink saw of one session.
#[derive(Clone, Debug, Default)]
struct Seen {
    commands: Vec<String>,
    data: String,
}

/// A minimal SMTP server (RFC 5321 happy path, AUTH PLAIN) recording every session.
async fn sink() -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let mut session = Seen::default();
                write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    session.commands.push(line.clone());
                    let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-sink\r\n250 AUTH PLAIN LOGIN\r\n",
                        "AUTH" => b"235 2.7.0 Authentication successful\r\n",
                        "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
                        "DATA" => {
                            write.write_all(b"354 go ahead\r\n").await.unwrap();
                            while let Ok(Some(data)) = lines.next_line().await {
                                if data == "." {
                                    break;
                                }
                                session.data.push_str(&data);
                                session.data.push('\n');
                            }
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            break;
                        }
                        _ => b"502 not implemented\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                    if verb == "DATA" {
                        record.lock().unwrap().push(session.clone());
                    }
                }
            });
        }
    });
    (port, seen)
}

/// Decodes a quoted-printable body (soft line breaks and `=XX` escapes).
fn unquote(qp: &str) -> String {
    let joined = qp.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("utf-8")
}

fn plain(port: u16) -> SmtpConfig {
    SmtpConfig {
        port: Some(port),
        security: SmtpSecurity::Plain,
        credentials: Some(("mailer".into(), "s3cret".into())),
        ..SmtpConfig::new("127.0.0.1", "Example <no-reply@example.com>")
    }
}

#[tokio::test]
async fn the_smtp_sender_delivers_with_credentials() {
    let (port, seen) = sink().await;
    let sender = SmtpSender::new(plain(port)).expect("config");
    let message = EmailMessage::render(EmailContext {
        kind: MessageKind::ResetPassword,
        link: Some("https://app.example/reset-password?token=abc".into()),
        recipient: "ann@example.com".into(),
        expires_in: None,
        code: None,
    });
    sender.send(&message).await.expect("sent");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert!(
        s.commands.iter().any(|c| c.starts_with("AUTH PLAIN")),
        "{:?}",
        s.commands
    );
    assert!(
        s.commands
            .iter()
            .any(|c| c == "MAIL FROM:<no-reply@example.com>"),
        "{:?}",
        s.commands
    );
    assert!(
        s.commands.iter().any(|c| c == "RCPT TO:<ann@example.com>"),
        "{:?}",
        s.commands
    );
    assert!(
        s.data.contains("Subject: Reset your password"),
        "{}",
        s.data
    );
    assert!(
        unquote(&s.data).contains("https://app.example/reset-password?token=abc"),
        "{}",
        s.data
    );
}

#[tokio::test]
async fn a_reset_request_reaches_the_sink_and_an_unreachable_server_stays_invisible() {
    let (port, seen) = sink().await;
    let t = app_with("smtp_flow", |b| {
        b.recovery(crudauth::RecoveryConfig::new(FRONTEND))
            .email_sender(Arc::new(SmtpSender::new(plain(port)).unwrap()))
    })
    .await;
    t.register("ann@example.com", "ann", "correct horse 1")
        .await;
    let r = t
        .send(Req::post("/password/reset-request").json(json!({"email": "ann@example.com"})))
        .await;
    assert_eq!(r.status, 200);
    t.auth.background().flush().await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "verify at registration, then reset");
    // The two deliveries run concurrently: find the reset among them.
    let bodies: Vec<String> = seen.iter().map(|s| unquote(&s.data)).collect();
    assert!(
        bodies
            .iter()
            .any(|b| b.contains(&format!("{FRONTEND}/reset-password?token="))),
        "{bodies:?}"
    );

    // A server that is not there: the caller sees the same answer.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_port = closed.local_addr().unwrap().port();
    drop(closed);
    let t = app_with("smtp_down", |b| {
        b.recovery(crudauth::RecoveryConfig::new(FRONTEND))
            .email_sender(Arc::new(SmtpSender::new(plain(dead_port)).unwrap()))
    })
    .await;
    t.register("ann@example.com", "ann", "correct horse 1")
        .await;
    let r = t
        .send(Req::post("/password/reset-request").json(json!({"email": "ann@example.com"})))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.detail(),
        "If an account exists, a password reset email has been sent."
    );
    t.auth.background().flush().await;
}

#[tokio::test]
async fn a_mailbox_form_recipient_is_refused_not_rerouted() {
    let (port, seen) = sink().await;
    let sender = SmtpSender::new(plain(port)).expect("config");
    let message = EmailMessage::render(EmailContext {
        kind: MessageKind::VerifyEmail,
        link: Some("https://app.example/verify-email?token=abc".into()),
        recipient: "x<attacker@evil.example>".into(),
        expires_in: None,
        code: None,
    });
    assert!(sender.send(&message).await.is_err());
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn bad_smtp_settings_are_refused_at_build_time() {
    assert!(SmtpSender::new(SmtpConfig::new("127.0.0.1", "no mailbox here")).is_err());
}
