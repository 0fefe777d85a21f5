//! Body, query and path extractors whose rejections use the REST error envelope.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::domain::ids::ClientId;
use crate::edge::input::{nul_in_json, refusal};
use crate::error::AppError;

/// Largest JSON body of the REST routes (an app's metadata is far smaller).
pub const JSON_BODY_LIMIT: usize = 64 * 1024;

/// A JSON body, with bad bodies answered as `{"code","message"}`. A string holding NUL is
/// refused naming its field, before the body is read as `T`.
pub struct ApiJson<T>(pub T);

/// An optional JSON body: an empty body is `None`; anything else must be good JSON, as for
/// [`ApiJson`].
pub struct MaybeJson<T>(pub Option<T>);

/// Reads a request's body as JSON of `T`; `Ok(None)` when the body is empty and `optional`.
async fn read_json<S: Send + Sync, T: DeserializeOwned>(
    request: Request,
    state: &S,
    optional: bool,
) -> Result<Option<T>, AppError> {
    let json = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| {
            let media = media.trim().to_ascii_lowercase();
            media == "application/json" || media.ends_with("+json")
        });
    let bytes =
        Bytes::from_request(request, state)
            .await
            .map_err(|err: BytesRejection| match err.status().as_u16() {
                413 => AppError::PayloadTooLarge {
                    limit: JSON_BODY_LIMIT,
                },
                _ => AppError::invalid(format!("invalid JSON body: {}", err.body_text())),
            })?;
    if optional && bytes.is_empty() {
        return Ok(None);
    }
    if !json {
        return Err(AppError::UnsupportedMediaType(
            "send the body as application/json".into(),
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|err| AppError::invalid(format!("invalid JSON body: {err}")))?;
    if let Some(field) = nul_in_json(&value) {
        return Err(AppError::invalid(refusal(&field)));
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|err| AppError::invalid(format!("invalid JSON body: {err}")))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value = read_json(request, state, false).await?;
        value
            .map(Self)
            .ok_or_else(|| AppError::invalid("invalid JSON body: the body is empty"))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for MaybeJson<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        read_json(request, state, true).await.map(Self)
    }
}

/// `axum::extract::Query`, with bad query strings answered as `{"code","message"}`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|err: QueryRejection| {
                AppError::invalid(format!("invalid query: {}", err.body_text()))
            })
    }
}

/// A route's path parameters (one `String` by default), with malformed ones answered as
/// `{"code","message"}`.
pub struct ApiPath<T = String>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|err| AppError::invalid(format!("invalid path: {}", err.body_text())))
    }
}

/// A client id from the path; one that cannot be a client id names nothing (`what` not found).
pub fn client_id(text: &str, what: &'static str) -> Result<ClientId, AppError> {
    ClientId::parse(text).ok_or(AppError::NotFound(what))
}
