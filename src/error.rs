//! One error type for every layer: stable codes, a fitting HTTP status, and internal causes that
//! are logged once and never sent to a client.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Every failure a caller can see. The `code()` strings are a contract: clients branch on them.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Input failed validation; the message names the field.
    #[error("{0}")]
    InvalidInput(String),
    /// No credentials were presented where they are required.
    #[error("authentication required")]
    Unauthenticated,
    /// A bearer token was presented but is malformed, expired, revoked or not ours.
    #[error("the access token is invalid or expired")]
    InvalidToken,
    /// Username or password wrong; deliberately does not say which.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// A refresh token that is unknown, expired, revoked or was already used.
    #[error("the refresh token is invalid, expired or was already used")]
    InvalidRefreshToken,
    /// Authenticated, but the token lacks the scope or the user lacks the role.
    #[error("{0}")]
    Forbidden(String),
    /// The thing does not exist, or the caller may not know that it does.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule was violated.
    #[error("{0}")]
    Conflict(String),
    /// The request body is larger than this endpoint accepts.
    #[error("the request body is too large (limit {limit} bytes)")]
    PayloadTooLarge { limit: usize },
    /// The request's content type is not one this endpoint accepts.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Too many failed sign-ins for this username or address; try again after the delay.
    #[error("too many failed sign-ins; try again in {retry_after_secs} s")]
    TooManyAttempts { retry_after_secs: u64 },
    /// Something broke on our side. The cause is logged, the client sees a generic message.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Convenience alias used throughout the crate.
pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// Builds an [`AppError::InvalidInput`] from anything printable.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }

    /// Builds an [`AppError::Forbidden`] from anything printable.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }

    /// Wraps an unexpected failure.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }

    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "INVALID_INPUT",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::InvalidToken => "INVALID_TOKEN",
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::InvalidRefreshToken => "INVALID_REFRESH_TOKEN",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::Conflict(_) => "CONFLICT",
            Self::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            Self::TooManyAttempts { .. } => "TOO_MANY_ATTEMPTS",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidInput(_) => StatusCode::BAD_REQUEST,
            Self::Unauthenticated
            | Self::InvalidToken
            | Self::InvalidCredentials
            | Self::InvalidRefreshToken => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `WWW-Authenticate` challenge for bearer-protected resources (RFC 6750 §3), if any.
    pub fn bearer_challenge(&self) -> Option<&'static str> {
        match self {
            Self::Unauthenticated => Some(r#"Bearer realm="idgraph""#),
            Self::InvalidToken => Some(
                r#"Bearer realm="idgraph", error="invalid_token", error_description="the access token is invalid or expired""#,
            ),
            _ => None,
        }
    }

    /// Adds the headers this error calls for to any response that renders it: the bearer
    /// challenge, and `Retry-After` for the sign-in back-off.
    pub fn add_headers(&self, headers: &mut HeaderMap) {
        if let Some(challenge) = self.bearer_challenge() {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if let Self::TooManyAttempts { retry_after_secs } = self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
    }

    /// Logs an internal cause exactly once, at the edge where the error is rendered.
    pub(crate) fn log_if_internal(&self) {
        if let Self::Internal(cause) = self {
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
    }
}

/// The REST error envelope: `{"code": "...", "message": "..."}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// Stable code, see [`AppError::code`].
    pub code: &'static str,
    /// Human-readable text; never contains internal details.
    pub message: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log_if_internal();
        let body = ErrorBody {
            code: self.code(),
            message: self.to_string(),
        };
        let mut response = (self.status(), axum::Json(body)).into_response();
        self.add_headers(response.headers_mut());
        response
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        match err.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
                Self::Conflict("a record with the same unique value already exists".into())
            }
            _ => Self::Internal(err.into()),
        }
    }
}

impl From<sea_orm::TransactionError<AppError>> for AppError {
    fn from(err: sea_orm::TransactionError<AppError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(app) => app,
        }
    }
}
