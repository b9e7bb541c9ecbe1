//! Users and their tokens. Admins manage users; anyone may make a token for themselves.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use slipway_core::deploy::Role;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Caller, new_token, token_hash};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Path};
use crate::views::{NewTokenView, TokenView, UserView};

/// The caller.
#[utoipa::path(get, path = "/api/v1/me", tag = "people",
    responses((status = 200, body = UserView), (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn me(caller: Caller) -> Json<UserView> {
    Json((&caller.user).into())
}

/// A user to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUserBody {
    name: String,
    /// `viewer`, `deployer`, `approver` or `admin`.
    #[schema(value_type = String)]
    role: Role,
}

fn check_user_name(name: &str) -> ApiResult<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(
            ApiError::bad_request("invalid_name", format!("`{name}` is not a valid user name"))
                .with_hint("use 1 to 64 letters, digits, `.`, `-`, `_` or `@`"),
        )
    }
}

/// Adds a user (admins only).
#[utoipa::path(post, path = "/api/v1/users", tag = "people",
    request_body = NewUserBody,
    responses((status = 201, body = UserView), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn add_user(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewUserBody>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    caller.require(Role::Admin, "adding a user")?;
    check_user_name(&body.name)?;
    let user = state
        .store
        .add_user(&body.name, body.role, &caller.user.name, state.clock.now())
        .await?;
    Ok((StatusCode::CREATED, Json((&user).into())))
}

/// Every user (admins only).
#[utoipa::path(get, path = "/api/v1/users", tag = "people",
    responses((status = 200, body = Vec<UserView>)))]
pub(crate) async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<UserView>>> {
    caller.require(Role::Admin, "listing users")?;
    let users = state.store.users().await?;
    Ok(Json(users.iter().map(Into::into).collect()))
}

/// A new role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleBody {
    #[schema(value_type = String)]
    role: Role,
}

/// Changes a user's role (admins only).
#[utoipa::path(put, path = "/api/v1/users/{name}/role", tag = "people",
    params(("name" = String, Path)),
    request_body = RoleBody,
    responses((status = 200, body = UserView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn set_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<RoleBody>,
) -> ApiResult<Json<UserView>> {
    caller.require(Role::Admin, "changing a role")?;
    if name == caller.user.name && body.role < Role::Admin {
        return Err(
            ApiError::conflict("last_word", "you cannot take away your own admin role")
                .with_hint("ask another admin to do it"),
        );
    }
    let user = state
        .store
        .set_role(&name, body.role, &caller.user.name, state.clock.now())
        .await?;
    Ok(Json((&user).into()))
}

/// A token to create.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTokenBody {
    /// Whose token; the caller's own when absent. Only admins make tokens for others.
    user: Option<String>,
    /// What it is for (`ci`, `laptop`).
    label: Option<String>,
}

/// Creates a token. The answer is the only time the token is shown.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "people",
    request_body = NewTokenBody,
    responses((status = 201, body = NewTokenView), (status = 403, body = crate::error::ErrorBody)))]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    body: Option<Body<NewTokenBody>>,
) -> ApiResult<(StatusCode, Json<NewTokenView>)> {
    let body = body.map(|Body(b)| b).unwrap_or_default();
    let user = body.user.unwrap_or_else(|| caller.user.name.clone());
    if user != caller.user.name {
        caller.require(Role::Admin, "creating a token for someone else")?;
    }
    let token = new_token();
    let record = state
        .store
        .create_token(
            &user,
            &token_hash(&token),
            body.label.as_deref(),
            &caller.user.name,
            state.clock.now(),
        )
        .await?;
    let view = NewTokenView {
        token,
        record: (&record).into(),
    };
    Ok((StatusCode::CREATED, Json(view)))
}

/// Tokens: an admin sees all, anyone else their own. Never the tokens themselves.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "people",
    responses((status = 200, body = Vec<TokenView>)))]
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<TokenView>>> {
    let user = (caller.user.role < Role::Admin).then_some(caller.user.name.as_str());
    let tokens = state.store.tokens(user).await?;
    Ok(Json(tokens.iter().map(Into::into).collect()))
}

/// Revokes a token: an admin any, anyone else their own (another's answers 404).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "people",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    // Someone else's token looks the same as no token to a non-admin: nothing is revealed.
    let own = state.store.tokens(Some(&caller.user.name)).await?;
    let allowed = caller.user.role >= Role::Admin || own.iter().any(|t| t.id == id);
    if allowed
        && state
            .store
            .revoke_token(id, &caller.user.name, state.clock.now())
            .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(
            ApiError::not_found(format!("no active token {id} you may revoke"))
                .with_hint("list tokens with `slipway token list`"),
        )
    }
}
