//! Unit tests of the token service.

use super::*;
use crate::store::MemoryStore;

fn service(config: BearerConfig) -> (TokenService, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let tokens = TokenService::new(config, &[9u8; 32], store.clone()).expect("valid config");
    (tokens, store)
}

fn claims_of(tokens: &TokenService, token: &str) -> Claims {
    tokens.decode(token).expect("a valid token")
}

#[tokio::test]
async fn a_rotation_never_extends_past_the_family_lifetime() {
    let (tokens, store) = service(BearerConfig {
        access_ttl: Duration::from_secs(60),
        refresh_ttl: Duration::from_secs(1000),
        refresh_family_lifetime: Duration::from_secs(100),
        ..BearerConfig::default()
    });
    let pair = tokens.issue("7", 0, vec![]).await.unwrap();
    let first = claims_of(&tokens, &pair.refresh_token);
    assert_eq!(first.exp - first.iat, 100, "capped by the family lifetime");
    assert_eq!(pair.refresh_expires_in, 100);

    // Moves the family's start back by `secs` and returns its record.
    let fam = first.fam.clone().unwrap();
    let key = family_key(&fam);
    let age = |secs: i64| {
        let (store, key) = (store.clone(), key.clone());
        async move {
            let mut record: FamilyRecord =
                serde_json::from_slice(&store.get(&key).await.unwrap().unwrap()).unwrap();
            record.created -= secs;
            store
                .set(&key, &serde_json::to_vec(&record).unwrap(), None)
                .await
                .unwrap();
            record
        }
    };
    // Pretend the family started 95 seconds ago: 5 seconds are left.
    let record = age(95).await;
    let checked = tokens.check_refresh(&pair.refresh_token).await.unwrap();
    let rotated = tokens.rotate(&checked, 0).await.unwrap();
    let second = claims_of(&tokens, &rotated.refresh_token);
    assert!(second.exp as i64 <= record.created + 100, "not re-armed");
    assert!(rotated.expires_in <= 5, "the access token is capped too");

    // Past the end: refused, and the family is gone.
    age(10).await;
    assert!(tokens.check_refresh(&rotated.refresh_token).await.is_err());
    assert!(store.get(&key).await.unwrap().is_none());
    assert!(tokens.families("7").await.unwrap().is_empty());
}

#[tokio::test]
async fn families_are_indexed_listed_and_revoked_per_user() {
    let (tokens, _) = service(BearerConfig::default());
    let a = tokens.issue("7", 0, vec![]).await.unwrap();
    let b = tokens.issue("7", 0, vec![]).await.unwrap();
    let other = tokens.issue("8", 0, vec![]).await.unwrap();
    let listed = tokens.families("7").await.unwrap();
    assert_eq!(listed.len(), 2);
    let others = tokens.families("8").await.unwrap();
    assert!(
        !tokens
            .revoke_family_by_id("7", &others[0].id)
            .await
            .unwrap(),
        "another user's family is not found"
    );
    assert!(tokens.check_refresh(&other.refresh_token).await.is_ok());
    assert!(
        tokens
            .revoke_family_by_id("7", &listed[0].id)
            .await
            .unwrap()
    );
    assert_eq!(tokens.families("7").await.unwrap().len(), 1);
    assert_eq!(tokens.revoke_all_families("7").await.unwrap(), 1);
    assert!(tokens.check_refresh(&a.refresh_token).await.is_err());
    assert!(tokens.check_refresh(&b.refresh_token).await.is_err());
    assert!(tokens.check_refresh(&other.refresh_token).await.is_ok());
}

#[tokio::test]
async fn a_presented_refresh_token_revokes_its_family_once() {
    let (tokens, _) = service(BearerConfig::default());
    let pair = tokens.issue("7", 0, vec![]).await.unwrap();
    assert!(
        tokens
            .revoke_refresh_token(&pair.access_token)
            .await
            .unwrap()
            .is_none(),
        "an access token names no family"
    );
    assert!(
        tokens
            .revoke_refresh_token(&pair.refresh_token)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        tokens
            .revoke_refresh_token(&pair.refresh_token)
            .await
            .unwrap()
            .is_none()
    );
    assert!(tokens.check_refresh(&pair.refresh_token).await.is_err());
}

#[test]
fn a_token_without_iat_is_rejected_although_jsonwebtoken_does_not_check_it() {
    let (tokens, _) = service(BearerConfig::default());
    let now = now_secs() as u64;
    let sign = |claims: &serde_json::Value| tokens.inner.keys.sign(claims).unwrap();
    let mut claims = serde_json::json!({
        "sub": "7", "ver": 0, "exp": now + 60, "iat": now, "jti": "x",
        "token_type": "access", "scopes": []
    });
    assert!(tokens.verify_access(&sign(&claims)).is_ok(), "the control");
    claims.as_object_mut().unwrap().remove("iat");
    assert!(tokens.verify_access(&sign(&claims)).is_err());
}

#[test]
fn a_family_lifetime_under_a_second_is_refused() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let config = BearerConfig {
        refresh_family_lifetime: Duration::from_millis(500),
        ..BearerConfig::default()
    };
    assert!(TokenService::new(config, &[9u8; 32], store).is_err());
}
