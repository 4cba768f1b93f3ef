//! The operators' surface: the rooms API, Prometheus metrics, liveness and the OpenAPI document
//! generated from these handlers (so the document cannot drift from the routes).

mod auth;
mod metrics;
mod recordings;
mod views;

pub use auth::AdminAccess;
pub use views::{ErrorBody, ParticipantView, RoomView, TrackView};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::{middleware, Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::server::AppState;
use views::{ApiError, Health};

#[derive(OpenApi)]
#[openapi(
    info(title = "roomcast admin API", description = "Rooms, participants and tracks of a roomcast SFU. \
        With --admin-token set, every route but /healthz and /api/openapi.json needs `Authorization: Bearer <token>`; \
        without it they answer only to loopback clients."),
    modifiers(&BearerAuth),
    tags((name = "rooms", description = "Rooms and participants"),
        (name = "recordings", description = "Recording rooms to WebM files (one per participant), and the files"),
        (name = "operations", description = "Metrics and liveness"))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The admin routes and their OpenAPI document.
pub(crate) fn routes(state: AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let guarded = OpenApiRouter::new()
        .routes(routes!(list_rooms))
        .routes(routes!(get_room, close_room))
        .routes(routes!(kick_participant))
        .routes(routes!(
            recordings::start_recording,
            recordings::stop_recording
        ))
        .routes(routes!(recordings::list_recordings))
        .routes(routes!(
            recordings::download_recording,
            recordings::delete_recording
        ))
        .routes(routes!(prometheus_metrics))
        .route_layer(middleware::from_fn_with_state(state, auth::require_admin));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(openapi_document))
        .merge(guarded)
        .split_for_parts()
}

/// Every room with its participants and their tracks.
#[utoipa::path(get, path = "/api/rooms", tag = "rooms", security(("bearer" = [])),
    responses(
        (status = 200, description = "All rooms, in id order", body = Vec<RoomView>),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "Not a loopback client and no token configured", body = ErrorBody)))]
async fn list_rooms(State(state): State<AppState>) -> Json<Vec<RoomView>> {
    Json(state.sfu.rooms().into_iter().map(Into::into).collect())
}

/// One room.
#[utoipa::path(get, path = "/api/rooms/{room}", tag = "rooms", security(("bearer" = [])),
    params(("room" = String, Path, description = "Room id")),
    responses(
        (status = 200, description = "The room", body = RoomView),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "Not a loopback client and no token configured", body = ErrorBody)))]
async fn get_room(
    State(state): State<AppState>,
    Path(room): Path<String>,
) -> Result<Json<RoomView>, ApiError> {
    state
        .sfu
        .room(&room)
        .map(|r| Json(r.into()))
        .ok_or_else(|| ApiError::not_found(format!("no room {room:?}")))
}

/// Closes a room: every participant is told (`kicked` with reason `room_closed`) and disconnected.
#[utoipa::path(delete, path = "/api/rooms/{room}", tag = "rooms", security(("bearer" = [])),
    params(("room" = String, Path, description = "Room id")),
    responses(
        (status = 204, description = "Everyone is being removed; the room disappears when the last one is out"),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "Not a loopback client and no token configured", body = ErrorBody)))]
async fn close_room(
    State(state): State<AppState>,
    Path(room): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.sfu.close_room(&room) {
        tracing::info!(room, "room closed by an operator");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no room {room:?}")))
    }
}

/// Kicks a participant: its page is told (`kicked`), its connection closes, and the others see
/// `participant_left`.
#[utoipa::path(delete, path = "/api/rooms/{room}/participants/{id}", tag = "rooms", security(("bearer" = [])),
    params(("room" = String, Path, description = "Room id"), ("id" = String, Path, description = "Participant id")),
    responses(
        (status = 204, description = "The participant is being removed"),
        (status = 404, description = "No such room or participant", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "Not a loopback client and no token configured", body = ErrorBody)))]
async fn kick_participant(
    State(state): State<AppState>,
    Path((room, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if state.sfu.kick(&room, &id) {
        tracing::info!(room, participant = id, "participant kicked by an operator");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no participant {id:?} in room {room:?}"
        )))
    }
}

/// Server metrics in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "Not a loopback client and no token configured", body = ErrorBody)))]
async fn prometheus_metrics(State(state): State<AppState>) -> impl IntoResponse {
    let text = metrics::render(&state.sfu.totals(), &state.edge);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

/// Liveness: answers while the process serves HTTP. No authentication.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// This document. No authentication.
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
async fn openapi_document(State(state): State<AppState>) -> impl IntoResponse {
    let document = state.openapi.get().cloned().unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], document)
}
