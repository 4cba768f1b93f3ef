//! The operators' surface: the rooms API, Prometheus metrics, liveness and the OpenAPI document
//! generated from these handlers (so the document cannot drift from the routes).

mod auth;
mod metrics;
mod peers;
mod recordings;
mod views;

pub use auth::AdminAccess;
pub use views::{ErrorBody, NodeView, ParticipantView, RoomView, TrackView};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
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
        (name = "nodes", description = "The nodes of a cluster"),
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
        .routes(routes!(list_nodes))
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

/// Every room with its participants and their tracks. In a cluster, every node's rooms (each
/// with the node it lives on), unless `scope=local` asks for this node's alone.
#[utoipa::path(get, path = "/api/rooms", tag = "rooms", security(("bearer" = [])),
    params(("scope" = Option<String>, Query, description = "`local`: this node's rooms only")),
    responses(
        (status = 200, description = "All rooms, in id order", body = Vec<RoomView>),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "Not a loopback client and no token configured", body = ErrorBody)))]
async fn list_rooms(
    State(state): State<AppState>,
    Query(query): Query<RoomsQuery>,
    headers: HeaderMap,
) -> Json<Vec<RoomView>> {
    let here = state
        .options
        .cluster
        .as_ref()
        .map(|c| c.claims.node().clone());
    let mut rooms: Vec<RoomView> = state
        .sfu
        .rooms()
        .into_iter()
        .map(|r| RoomView {
            node: here.as_ref().map(ToString::to_string),
            ..r.into()
        })
        .collect();
    if let (Some(cluster), None) = (&state.options.cluster, query.scope.as_deref()) {
        rooms.extend(rooms_elsewhere(cluster, headers.get(header::AUTHORIZATION)).await);
        rooms.sort_by(|a, b| a.id.cmp(&b.id));
    }
    Json(rooms)
}

#[derive(serde::Deserialize)]
struct RoomsQuery {
    scope: Option<String>,
}

/// The rooms of every other node, each asked with the operator's credentials; a node that does
/// not answer is left out (and logged), not waited for.
async fn rooms_elsewhere(
    cluster: &crate::ClusterMember,
    authorization: Option<&axum::http::HeaderValue>,
) -> Vec<RoomView> {
    let nodes = match cluster.registry.nodes().await {
        Ok(nodes) => nodes,
        Err(error) => {
            tracing::debug!(%error, "listing rooms: this node's alone");
            return Vec::new();
        }
    };
    let others = nodes.iter().filter(|n| &n.id != cluster.claims.node());
    let asked = others.map(|node| async move {
        match peers::rooms_of(&node.url, authorization).await {
            Ok(rooms) => rooms
                .into_iter()
                .map(|r| RoomView {
                    node: Some(node.id.to_string()),
                    ..r
                })
                .collect(),
            Err(error) => {
                tracing::warn!(node = %node.id, %error, "listing rooms: a node did not answer");
                Vec::new()
            }
        }
    });
    futures_util::future::join_all(asked)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// The nodes of the service: with `--redis` every node whose heartbeat is alive, in id order;
/// without, this node alone.
#[utoipa::path(get, path = "/api/nodes", tag = "nodes", security(("bearer" = [])),
    responses(
        (status = 200, description = "The nodes", body = Vec<NodeView>),
        (status = 503, description = "The cluster's Redis is unavailable", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "Not a loopback client and no token configured", body = ErrorBody)))]
async fn list_nodes(State(state): State<AppState>) -> Result<Json<Vec<NodeView>>, ApiError> {
    let Some(cluster) = &state.options.cluster else {
        let totals = state.sfu.totals();
        return Ok(Json(vec![NodeView {
            id: "standalone".to_owned(),
            url: String::new(),
            state: "serving".to_owned(),
            rooms: totals.rooms,
            participants: totals.participants,
            cpu: 0.0,
            updated_ms: views::now_ms(),
        }]));
    };
    let nodes = cluster
        .registry
        .nodes()
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(Json(nodes.into_iter().map(Into::into).collect()))
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
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    if state.sfu.close_room(&room) {
        tracing::info!(room, "room closed by an operator");
        return Ok(StatusCode::NO_CONTENT);
    }
    let path = format!("/api/rooms/{room}");
    at_owner(&state, &room, Method::DELETE, &path, &headers)
        .await
        .unwrap_or_else(|| Err(ApiError::not_found(format!("no room {room:?}"))))
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
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    if state.sfu.kick(&room, &id) {
        tracing::info!(room, participant = id, "participant kicked by an operator");
        return Ok(StatusCode::NO_CONTENT);
    }
    let path = format!("/api/rooms/{room}/participants/{id}");
    at_owner(&state, &room, Method::DELETE, &path, &headers)
        .await
        .unwrap_or_else(|| {
            Err(ApiError::not_found(format!(
                "no participant {id:?} in room {room:?}"
            )))
        })
}

/// Carries an operator's `method path` about `room` (a kick, a close, a recording's start or
/// stop) to the node the room lives on, when that is another node of the cluster; `None` when
/// there is none to ask. The owner's success status comes back as it is.
pub(super) async fn at_owner(
    state: &AppState,
    room: &str,
    method: Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<Result<StatusCode, ApiError>> {
    let cluster = state.options.cluster.as_ref()?;
    let owner = cluster.claims.owner(room).await.ok()??;
    if &owner == cluster.claims.node() {
        return None;
    }
    let nodes = cluster.registry.nodes().await.ok()?;
    let node = nodes.into_iter().find(|n| n.id == owner)?;
    let sent = peers::request(method, &node.url, path, headers.get(header::AUTHORIZATION)).await;
    Some(match sent {
        Ok(status) if status.is_success() => {
            tracing::info!(room, node = %owner, "passed an operator's request to the room's node");
            Ok(status)
        }
        Ok(status) => Err(ApiError::new(
            status,
            "from_owner",
            format!("the room's node answered {status}"),
        )),
        Err(error) => Err(ApiError::unavailable(error)),
    })
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
