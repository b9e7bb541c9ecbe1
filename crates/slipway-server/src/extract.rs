//! Extractors whose rejections answer in the API's error shape: a malformed body names the
//! field, an oversized one is a 413 with the limit, a bad query or path parameter says which.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::StatusCode;
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(crate) struct Body<T>(pub(crate) T);

/// A body that may be left out: without a `Content-Type` header it is `None`.
impl<T, S> OptionalFromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, ApiError> {
        if !request.headers().contains_key(header::CONTENT_TYPE) {
            return Ok(None);
        }
        let axum::Json(value) =
            <axum::Json<T> as FromRequest<S>>::from_request(request, state).await?;
        Ok(Some(Body(value)))
    }
}

/// Query-string parameters.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(crate) struct Query<T>(pub(crate) T);

/// Path parameters.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(crate) struct Path<T>(pub(crate) T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(error) => ApiError::bad_request(
                "invalid_body",
                mask_strings(&strip_axum_prefix(&error.body_text())),
            )
            .with_hint("the OpenAPI document at /api/openapi.json describes every body"),
            JsonRejection::JsonSyntaxError(error) => {
                ApiError::bad_request("malformed_json", strip_axum_prefix(&error.body_text()))
                    .with_hint("send one JSON object")
            }
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON",
            )
            .with_hint("send `Content-Type: application/json`"),
            JsonRejection::BytesRejection(error)
                if error.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "the request body is larger than the server accepts",
                )
                .with_hint("JSON bodies are small; artifacts go to POST /api/v1/artifacts")
            }
            other => ApiError::bad_request("invalid_body", other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request("invalid_query", strip_axum_prefix(&rejection.body_text()))
            .with_hint("the OpenAPI document at /api/openapi.json lists each parameter")
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request("invalid_path", strip_axum_prefix(&rejection.body_text()))
            .with_hint("deploy ids are numbers: /api/v1/deploys/12")
    }
}

/// serde quotes a string it did not expect (`invalid type: string "…", expected …`): the
/// string may be a secret sent in the wrong place, so it is not repeated back (nor logged).
fn mask_strings(text: &str) -> String {
    let mut masked = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("string \"") {
        let (head, tail) = rest.split_at(at + "string \"".len());
        masked.push_str(head);
        // The closing quote: the first one not escaped by a backslash.
        let mut escaped = false;
        let end = tail.char_indices().find_map(|(i, c)| match c {
            '\\' if !escaped => {
                escaped = true;
                None
            }
            '"' if !escaped => Some(i),
            _ => {
                escaped = false;
                None
            }
        });
        match end {
            Some(end) => {
                masked.push_str("…\"");
                rest = &tail[end + 1..];
            }
            None => {
                masked.push('…');
                rest = "";
            }
        }
    }
    masked.push_str(rest);
    masked
}

/// axum's messages start with "Failed to deserialize …: "; the part after says what is wrong.
fn strip_axum_prefix(text: &str) -> String {
    match text.split_once(": ") {
        Some((head, rest)) if head.starts_with("Failed to") => rest.to_owned(),
        _ => text.to_owned(),
    }
}
