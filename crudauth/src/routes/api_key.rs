//! The API key routes (feature `api-keys`): JSON in and out.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use serde::Deserialize;

use super::private_json;
use crate::api_key::{ApiKeys, NewApiKeyRequest};
use crate::body::Fields;
use crate::error::{AuthError, ValidationIssue};
use crate::facade::CrudAuth;
use crate::principal::Principal;
use crate::user::UserRecord;

impl<U: UserRecord> CrudAuth<U> {
    /// The API key service, when [`crate::CrudAuthBuilder::api_keys`] turned it on.
    ///
    /// ```
    /// # crudauth::doc_fixture::run(async |auth| {
    /// assert!(auth.api_keys().is_none()); // the fixture has no API keys
    /// # Ok(()) });
    /// ```
    pub fn api_keys(&self) -> Option<&ApiKeys<U>> {
        self.inner.methods.api_keys.as_ref()
    }

    /// The API key routes only (empty without API keys): `POST /api-keys` and `GET
    /// /api-keys`, `DELETE /api-keys/{id}`, `POST /api-keys/{id}/rotate`.
    pub(super) fn api_key_routes(&self) -> Router<CrudAuth<U>> {
        if self.api_keys().is_none() {
            return Router::new();
        }
        Router::new()
            .route("/api-keys", post(create::<U>).get(list::<U>))
            .route("/api-keys/{id}", delete(revoke::<U>))
            .route("/api-keys/{id}/rotate", post(rotate::<U>))
    }
}

fn service<U: UserRecord>(auth: &CrudAuth<U>) -> Result<&ApiKeys<U>, AuthError> {
    auth.api_keys().ok_or(AuthError::NotFound("Not Found"))
}

/// A JSON body as `T` (an empty body is `{}`), unknown fields refused: one 422 entry.
fn body<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, AuthError> {
    let map = if body.is_empty() {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        serde_json::Value::Object(Fields::json(headers, body)?.all().clone())
    };
    serde_json::from_value(map).map_err(|e| {
        AuthError::Validation(vec![ValidationIssue {
            kind: "value_error",
            loc: vec!["body".into()],
            msg: e.to_string(),
            ctx: None,
        }])
    })
}

async fn create<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, AuthError> {
    let keys = service(&auth)?;
    let request: NewApiKeyRequest = body(&headers, &raw)?;
    let made = keys.create(&principal, request).await?;
    Ok((StatusCode::CREATED, private_json(made)).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    owner: Option<String>,
}

async fn list<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AuthError> {
    let Ok(Query(query)) = query else {
        return Err(AuthError::BadRequest("Invalid query."));
    };
    let keys = service(&auth)?;
    let listed = keys.list(&principal, query.owner.as_deref()).await?;
    Ok(private_json(listed))
}

async fn revoke<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    Path(id): Path<String>,
) -> Result<Response, AuthError> {
    service(&auth)?.revoke(&principal, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    /// Seconds the old secret keeps working.
    #[serde(default)]
    overlap: u64,
}

async fn rotate<U: UserRecord>(
    State(auth): State<CrudAuth<U>>,
    principal: Principal<U>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, AuthError> {
    let keys = service(&auth)?;
    let request: RotateRequest = body(&headers, &raw)?;
    let rotated = keys.rotate(&principal, &id, request.overlap).await?;
    Ok(private_json(rotated))
}
