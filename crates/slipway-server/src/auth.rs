//! Bearer tokens and roles. A token is 256 random bits shown once; the store keeps only its
//! SHA-256. Every API handler takes a [`Caller`] and asks it for the role its action needs.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use rand::RngCore;
use sha2::{Digest, Sha256};
use slipway_core::deploy::{Actor, Role};
use slipway_store::User;

use crate::AppState;
use crate::error::ApiError;

/// Every token starts with this, so a leaked one is easy to recognise (and to scan for).
const TOKEN_PREFIX: &str = "slw_";

/// A new token: `slw_` and 64 hex digits (256 random bits).
pub fn new_token() -> String {
    format!("{TOKEN_PREFIX}{}", random_hex(32))
}

/// `bytes` random bytes as hex, from rand's thread generator (cryptographically secure,
/// seeded by the operating system): for tokens, unique file names and idempotency keys.
pub fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    hex::encode(buffer)
}

/// What the store keeps of a token.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The person a request comes from, authenticated by its bearer token.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: User,
}

impl Caller {
    /// The caller as the core's actor.
    pub fn actor(&self) -> Actor {
        Actor {
            name: self.user.name.clone(),
            role: self.user.role,
        }
    }

    /// Refuses with 403 unless the caller's role is at least `role`; `doing` completes
    /// "… needs the ROLE role" ("starting a deploy").
    pub fn require(&self, role: Role, doing: &str) -> Result<(), ApiError> {
        if self.user.role >= role {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{} is a {}; {doing} needs the {} role",
                self.user.name,
                self.user.role.name(),
                role.name()
            ),
        )
        .with_hint(format!(
            "ask an admin to run `slipway user set-role {} {}`, or use another token",
            self.user.name,
            role.name()
        )))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        let Some(header) = header else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "this request carries no token",
            )
            .with_hint(state.token_hint()));
        };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .unwrap_or_default();
        if !token.starts_with(TOKEN_PREFIX) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the Authorization header is not `Bearer slw_…`",
            )
            .with_hint(
                "send `Authorization: Bearer TOKEN` with a token from `slipway token create`",
            ));
        }
        match state.store.token_user(&token_hash(token)).await? {
            Some((user, _)) => Ok(Caller { user }),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the token is unknown or has been revoked",
            )
            .with_hint("create a new one with `slipway token create` (as an admin)")),
        }
    }
}
