//! The recordings API: start and stop recording a room, list, download and delete the files.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream;
use roomcast_sfu::{DeleteError, RecordingError};
use tokio::io::AsyncReadExt;

use super::at_owner;
use super::views::{ApiError, ErrorBody, RecordingState, RecordingView};
use crate::server::AppState;

/// How much of a file one chunk of a download carries.
const CHUNK: usize = 64 * 1024;

fn recording_error(error: RecordingError) -> ApiError {
    let (status, code) = match error {
        RecordingError::NoSuchRoom(_) => (StatusCode::NOT_FOUND, "not_found"),
        RecordingError::AlreadyRecording(_) | RecordingError::NotRecording(_) => {
            (StatusCode::CONFLICT, "conflict")
        }
        RecordingError::Unwritable(_) => {
            tracing::error!(%error, "cannot record");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
    };
    ApiError::new(status, code, error.to_string())
}

/// Starts recording a room: one WebM file (VP8 + Opus) per participant, from when each
/// publishes; its participants are told (`{"type":"recording","active":true}`).
#[utoipa::path(post, path = "/api/rooms/{room}/recording", tag = "recordings", security(("bearer" = [])),
    params(("room" = String, Path, description = "Room id")),
    responses(
        (status = 201, description = "Recording", body = RecordingState),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 409, description = "Already being recorded", body = ErrorBody),
        (status = 500, description = "The recordings directory cannot be created", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "Not a loopback client and no token configured", body = ErrorBody)))]
pub(super) async fn start_recording(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<RecordingState>), ApiError> {
    let here = state.sfu.start_recording(&room);
    here_or_at_owner(&state, &room, Method::POST, &headers, here, "started").await?;
    Ok((
        StatusCode::CREATED,
        Json(RecordingState {
            room,
            recording: true,
        }),
    ))
}

/// Stops recording a room: each file is closed (duration and cues written) and the
/// participants are told (`{"type":"recording","active":false}`).
#[utoipa::path(delete, path = "/api/rooms/{room}/recording", tag = "recordings", security(("bearer" = [])),
    params(("room" = String, Path, description = "Room id")),
    responses(
        (status = 204, description = "Stopped"),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 409, description = "Not being recorded", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "Not a loopback client and no token configured", body = ErrorBody)))]
pub(super) async fn stop_recording(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let here = state.sfu.stop_recording(&room);
    here_or_at_owner(&state, &room, Method::DELETE, &headers, here, "stopped").await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What became of an operator's recording order given here (`here`): done, or, for a room this
/// node does not run, carried to the room's node in a cluster.
async fn here_or_at_owner(
    state: &AppState,
    room: &str,
    method: Method,
    headers: &HeaderMap,
    here: Result<(), RecordingError>,
    done: &str,
) -> Result<(), ApiError> {
    match here {
        Ok(()) => {
            tracing::info!(room, "recording {done} by an operator");
            Ok(())
        }
        Err(error @ RecordingError::NoSuchRoom(_)) => {
            let path = format!("/api/rooms/{room}/recording");
            at_owner(state, room, method, &path, headers)
                .await
                .unwrap_or_else(|| Err(recording_error(error)))
                .map(|_| ())
        }
        Err(error) => Err(recording_error(error)),
    }
}

/// Every recording file, newest first.
#[utoipa::path(get, path = "/api/recordings", tag = "recordings", security(("bearer" = [])),
    responses(
        (status = 200, description = "The files", body = Vec<RecordingView>),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "Not a loopback client and no token configured", body = ErrorBody)))]
pub(super) async fn list_recordings(State(state): State<AppState>) -> Json<Vec<RecordingView>> {
    let sfu = state.sfu.clone();
    let files = tokio::task::spawn_blocking(move || sfu.recordings())
        .await
        .unwrap_or_default();
    Json(files.into_iter().map(Into::into).collect())
}

/// Downloads one file (`video/webm`).
#[utoipa::path(get, path = "/api/recordings/{id}", tag = "recordings", security(("bearer" = [])),
    params(("id" = String, Path, description = "Recording id")),
    responses(
        (status = 200, description = "The WebM file", content_type = "video/webm"),
        (status = 404, description = "No such recording", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "Not a loopback client and no token configured", body = ErrorBody)))]
pub(super) async fn download_recording(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("no recording {id:?}"));
    let (_, path) = state.sfu.recording(&id).ok_or_else(not_found)?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| not_found())?;
    let size = file.metadata().await.map(|m| m.len()).ok();
    let chunks = stream::unfold(file, |mut file| async move {
        let mut buf = vec![0; CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let mut response = (
        [
            (header::CONTENT_TYPE, "video/webm".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}.webm\""),
            ),
        ],
        Body::from_stream(chunks),
    )
        .into_response();
    if let Some(size) = size {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, size.into());
    }
    Ok(response)
}

/// Deletes one file (refused while it is being written).
#[utoipa::path(delete, path = "/api/recordings/{id}", tag = "recordings", security(("bearer" = [])),
    params(("id" = String, Path, description = "Recording id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such recording", body = ErrorBody),
        (status = 409, description = "Still being written", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "Not a loopback client and no token configured", body = ErrorBody)))]
pub(super) async fn delete_recording(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match state.sfu.delete_recording(&id) {
        Ok(()) => {
            tracing::info!(id, "recording deleted by an operator");
            Ok(StatusCode::NO_CONTENT)
        }
        Err(e @ DeleteError::NotFound(_)) => Err(ApiError::not_found(e.to_string())),
        Err(e @ DeleteError::InProgress(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            e.to_string(),
        )),
        Err(e @ DeleteError::Io(..)) => {
            tracing::warn!(id, error = %e, "could not delete a recording");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                e.to_string(),
            ))
        }
    }
}
