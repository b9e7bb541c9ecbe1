//! Instance logs of the local target: `<data_dir>/logs/<environment>/<service>/<instance>.log`,
//! listed and read in byte ranges so the CLI can tail and follow them.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use super::catalog::{environment, service};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query};
use crate::views::{LogChunkView, LogFileView};

/// Most bytes one read returns.
const MAX_CHUNK: u64 = 256 * 1024;

fn log_dir(state: &AppState, service_name: &str, environment_name: &str) -> ApiResult<PathBuf> {
    service(state, service_name)?;
    let environment = environment(state, environment_name)?;
    let Some(root) = &state.settings.logs_dir else {
        return Err(ApiError::not_found("this server keeps no instance logs")
            .with_hint("instance logs exist for environments with target = \"local\""));
    };
    if environment.target != "local" {
        return Err(ApiError::not_found(format!(
            "environment `{}` uses target `{}`, whose instances slipway does not run",
            environment.name, environment.target
        ))
        .with_hint(
            "read the logs where that target keeps them; slipway keeps logs for target = \"local\"",
        ));
    }
    Ok(root.join(&environment.name).join(service_name))
}

/// The instances of a service in an environment that have logs, newest first.
#[utoipa::path(get, path = "/api/v1/logs/{service}/{environment}", tag = "logs",
    params(("service" = String, Path), ("environment" = String, Path)),
    responses((status = 200, body = Vec<LogFileView>), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn list_logs(
    State(state): State<AppState>,
    _caller: Caller,
    Path((service_name, environment_name)): Path<(String, String)>,
) -> ApiResult<Json<Vec<LogFileView>>> {
    let dir = log_dir(&state, &service_name, &environment_name)?;
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(instance) = name.strip_suffix(".log") else {
                continue;
            };
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            let modified = metadata.modified().ok();
            files.push((
                modified,
                LogFileView {
                    instance: instance.to_owned(),
                    size: metadata.len(),
                    modified: modified
                        .and_then(|m| jiff::Timestamp::try_from(m).ok())
                        .map(|t| t.to_string()),
                },
            ));
        }
    }
    files.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
    Ok(Json(files.into_iter().map(|(_, view)| view).collect()))
}

/// `?offset=&tail=` of a log read.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReadParams {
    /// Byte offset to read from (the `next` of the previous read).
    offset: Option<u64>,
    /// Instead of an offset: the last this many bytes (at most 256 KiB).
    tail: Option<u64>,
}

/// Reads an instance's log from a byte offset (or its tail), at most 256 KiB at a time.
#[utoipa::path(get, path = "/api/v1/logs/{service}/{environment}/{instance}", tag = "logs",
    params(("service" = String, Path), ("environment" = String, Path), ("instance" = String, Path), ReadParams),
    responses((status = 200, body = LogChunkView), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn read_log(
    State(state): State<AppState>,
    _caller: Caller,
    Path((service_name, environment_name, instance)): Path<(String, String, String)>,
    Query(params): Query<ReadParams>,
) -> ApiResult<Json<LogChunkView>> {
    let dir = log_dir(&state, &service_name, &environment_name)?;
    let valid = !instance.is_empty()
        && instance.len() <= 128
        && !instance.starts_with('.')
        && instance
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    let not_found = || {
        ApiError::not_found(format!(
            "no log of instance `{instance}` of {service_name} in {environment_name}"
        ))
        .with_hint(format!(
            "list the instances with `slipway logs {service_name} --env {environment_name}`"
        ))
    };
    if !valid {
        return Err(not_found());
    }
    let path = dir.join(format!("{instance}.log"));
    let chunk = tokio::task::spawn_blocking(move || -> std::io::Result<(u64, u64, Vec<u8>)> {
        let mut file = std::fs::File::open(&path)?;
        let size = file.metadata()?.len();
        let offset = match (params.tail, params.offset) {
            (Some(tail), _) => size.saturating_sub(tail.min(MAX_CHUNK)),
            (None, Some(offset)) => offset.min(size),
            (None, None) => 0,
        };
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::new();
        file.take(MAX_CHUNK).read_to_end(&mut bytes)?;
        Ok((offset, size, bytes))
    })
    .await
    .map_err(|e| ApiError::internal(&e))?;
    let (offset, size, bytes) = match chunk {
        Ok(chunk) => chunk,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
        Err(error) => return Err(ApiError::internal(&error)),
    };
    Ok(Json(LogChunkView {
        instance,
        offset,
        next: offset + bytes.len() as u64,
        size,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }))
}
