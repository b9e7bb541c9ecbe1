//! The API's one error type and its one shape on the wire: `{"error": {"code", "message", "hint"}}`.
//!
//! Errors a person can act on carry a message and a hint. Anything else (a database failure, a
//! bug) is logged with its detail and answered with a generic 500 that leaks nothing.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use slipway_store::StoreError;
use utoipa::ToSchema;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    /// A stable `snake_case` code programs can match on.
    pub code: &'static str,
    pub message: String,
    pub hint: Option<String>,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong and how to fix it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code, e.g. `not_found`, `forbidden`, `invalid_body`.
    pub code: String,
    pub message: String,
    /// What to do about it, when there is something to do.
    pub hint: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// A failure whose detail must not reach the client: logged here, answered generically.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error answering a request");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred",
        )
        .with_hint("try again; if it persists, the server's log has the details")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                hint: self.hint,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::AlreadyExists { .. } => {
                ApiError::conflict("already_exists", error.to_string())
            }
            StoreError::NotFound { what, ref name } => {
                let hint = match what {
                    "artifact" => format!(
                        "push it first: slipway artifact push FILE --service {}",
                        name.split(' ').next().unwrap_or("SERVICE")
                    ),
                    "user" => "list users with `slipway user list`".to_owned(),
                    _ => format!("check the {what}'s name"),
                };
                ApiError::not_found(error.to_string()).with_hint(hint)
            }
            StoreError::VersionTaken { .. } => {
                ApiError::conflict("version_taken", error.to_string())
                    .with_hint("versions are immutable: push the new build under a new version")
            }
            StoreError::Invalid { message, hint } => {
                ApiError::bad_request("invalid", message).with_hint(hint)
            }
            StoreError::Conflict(_) => ApiError::conflict("conflict", error.to_string())
                .with_hint("the deploy changed meanwhile; try again"),
            _ if error.is_unavailable() => {
                tracing::error!(error = %error, "database unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "the database is unavailable",
                )
                .with_hint("try again shortly; the server's log says why the database failed")
            }
            other => ApiError::internal(&other),
        }
    }
}

/// What handlers return.
pub type ApiResult<T> = Result<T, ApiError>;
