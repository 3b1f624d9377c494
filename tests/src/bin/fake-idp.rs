//! The tests' identity provider as a program, for trying social sign-in by hand:
//!
//! ```text
//! cargo run -p crudauth-tests --bin fake-idp -- [--addr 127.0.0.1:9000] [--email ann@example.com] [--sub ann-1]
//! ```
//!
//! An OpenID Connect issuer at `http://{addr}` (client id `crudauth-test-client`, secret
//! `a-client-secret-of-the-test-provider`) whose authorize endpoint approves at once as the
//! given person (verified address); a GitHub-shaped API under `/api` too. For local use only.

use crudauth_tests::oauth_provider::{FakeIdp, Person};

#[tokio::main]
async fn main() {
    let mut addr = "127.0.0.1:9000".to_owned();
    let mut email = "ann@example.com".to_owned();
    let mut sub = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--addr", Some(v)) => addr = v,
            ("--email", Some(v)) => email = v,
            ("--sub", Some(v)) => sub = Some(v),
            _ => {
                eprintln!(
                    "usage: fake-idp [--addr 127.0.0.1:9000] [--email ann@example.com] [--sub ann-1]"
                );
                std::process::exit(2);
            }
        }
    }
    let idp = FakeIdp::start_at(&addr).await;
    let sub = sub.unwrap_or_else(|| format!("sub-{email}"));
    idp.sign_in_as(Person::verified(&sub, &email));
    idp.github_emails(&[(&email, true, true)]);
    eprintln!("fake-idp: issuer {} signs in {email} (sub {sub})", idp.base);
    let _ = tokio::signal::ctrl_c().await;
}
