//! The ClinicDesk sync server: a clinic's PCs push their change logs here and pull each
//! other's; the server keeps every change and each record's winning version, which is
//! also the clinic's backup. See `clinic_sync_proto` for the calls and `store` for what a
//! backend guarantees.
//!
//! Every request but `join` carries a device token; the device, and so the clinic, comes
//! from the token alone, so no body or path can reach another clinic's data. Tokens are
//! stored as SHA-256 hashes; a revoked device gets `revoked` on every call.

pub mod limit;
pub mod net;
pub mod store;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use clinic_sync_proto::{
    BlobInfo, Device, ErrorBody, ErrorCode, HeadRecord, JoinCode, JoinRequest, JoinResponse,
    NewJoinCode, PullResponse, PushRequest, PushResponse, SnapshotPage, MAX_BATCH, MAX_BODY_BYTES,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::limit::{Budget, Gates, RateLimiter};
use crate::store::{DeviceAuth, NewDevice, Store, StoreError};

/// The server's clock: real time, or a fixed offset from it in tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub struct AppState<S> {
    pub store: S,
    /// Requests per device, and failed tokens and joins per address.
    pub limiter: RateLimiter,
    pub clock: Clock,
    /// Timeouts and connection caps (`net::Limits`).
    pub limits: net::Limits,
    /// The most one clinic may keep in blobs (files), in bytes stored.
    pub blob_quota: u64,
    /// Bodies held at once, in all (`DEFAULT_MEMORY_BYTES`): requests being read and answers
    /// not yet sent, so slow readers can't pin the server's memory.
    pub budget: Budget,
    /// Requests in flight per device (4): one token can't take every worker.
    pub device_gates: Gates,
    /// Large reads in flight per clinic (pages, digests: 2): one clinic can't stall others.
    pub clinic_gates: Gates,
    /// One clinic's share of the `budget` (a quarter), in its units: a clinic's devices, however
    /// many, can't hold the memory every clinic needs.
    pub clinic_shares: Gates,
}

/// A clinic's blob storage by default: 50 GiB, some 2,500 files of the largest size.
pub const DEFAULT_BLOB_QUOTA: u64 = 50 << 30;
/// Bodies held at once by default: 512 MiB (the service's memory is capped at 2 GiB).
pub const DEFAULT_MEMORY_BYTES: usize = 512 << 20;

impl<S> AppState<S> {
    /// A server with the default limits and quota.
    pub fn new(store: S, limiter: RateLimiter, clock: Clock) -> Self {
        AppState {
            store,
            limiter,
            clock,
            limits: net::Limits::default(),
            blob_quota: DEFAULT_BLOB_QUOTA,
            budget: Budget::new(DEFAULT_MEMORY_BYTES, std::time::Duration::from_secs(10)),
            device_gates: Gates::new(4, std::time::Duration::from_secs(10)),
            clinic_gates: Gates::new(2, std::time::Duration::from_secs(30)),
            clinic_shares: Gates::new(
                Budget::units(DEFAULT_MEMORY_BYTES / 4) as usize,
                std::time::Duration::from_secs(10),
            ),
        }
    }

    /// Bodies held at once: `bytes` in all, a quarter of it (at least one largest answer) per
    /// clinic; a request waits up to `wait` for room.
    pub fn set_memory(&mut self, bytes: usize, wait: std::time::Duration) {
        self.budget = Budget::new(bytes, wait);
        let share = (bytes / 4).max(MAX_BODY_BYTES + clinic_sync_proto::MAX_RESPONSE_BYTES);
        self.clinic_shares = Gates::new(Budget::units(share) as usize, wait);
    }
}

/// The answer when the server has no room now (memory, places): the PC tries again later.
fn busy() -> ApiError {
    ApiError(
        ErrorCode::RateLimited,
        "the server is busy; try again shortly".into(),
    )
}

/// What a request may hold in memory: its body as declared (at most the route's limit; all of
/// it when the length is not declared) and the largest answer its route gives.
fn room_needed(req: &axum::extract::Request) -> usize {
    let path = req.uri().path();
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let answer = if path.starts_with("/v1/pull") || path.starts_with("/v1/snapshot") {
        clinic_sync_proto::MAX_RESPONSE_BYTES
    } else if path.starts_with("/v1/blobs/") {
        clinic_sync_proto::BLOB_CHUNK_BYTES + clinic_sync_proto::BLOB_SEAL_BYTES
    } else {
        64 * 1024
    };
    let limit = if path == "/v1/join" {
        JOIN_BODY_BYTES
    } else {
        MAX_BODY_BYTES
    };
    let body = match (req.method(), declared) {
        (&axum::http::Method::GET, _) => 0,
        (_, Some(n)) => n.min(limit),
        (_, None) => limit,
    };
    body + answer
}

/// The room a request holds in the memory budget, taken by whoever may first read its body:
/// `Authed`, once the token is known and the device's (and, for heavy reads, the clinic's)
/// places are had, so a stranger or a queue of one device's requests holds none of it; or
/// this middleware for a join, the one call without a token (its body is a few hundred
/// bytes). Held until the answer has been sent, down to the answer's size.
#[derive(Clone)]
struct Room {
    needed: usize,
    held: Arc<std::sync::Mutex<Vec<tokio::sync::OwnedSemaphorePermit>>>,
}

impl Room {
    fn keep(&self, permit: tokio::sync::OwnedSemaphorePermit) {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(permit);
    }
}

async fn budgeted<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let room = Room {
        needed: room_needed(&req),
        held: Default::default(),
    };
    if req.uri().path() == "/v1/join" {
        let Some(permit) = st.budget.reserve(room.needed).await else {
            return busy().into_response();
        };
        room.keep(permit);
    }
    req.extensions_mut().insert(room.clone());
    let resp = next.run(req).await;
    let (parts, body) = resp.into_parts();
    let size = hyper::body::Body::size_hint(&body)
        .exact()
        .map_or(room.needed, |n| n as usize);
    let mut permits = std::mem::take(&mut *room.held.lock().unwrap_or_else(|p| p.into_inner()));
    for p in &mut permits {
        Budget::shrink(p, size);
    }
    Response::from_parts(
        parts,
        axum::body::Body::new(Held {
            body,
            _permits: permits,
        }),
    )
}

/// An answer's body holding its room in the budget until it is sent (or dropped).
struct Held {
    body: axum::body::Body,
    _permits: Vec<tokio::sync::OwnedSemaphorePermit>,
}

impl hyper::body::Body for Held {
    type Data = Bytes;
    type Error = axum::Error;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, axum::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// The largest join request read.
pub const JOIN_BODY_BYTES: usize = 16 * 1024;

pub fn router<S: Store>(state: Arc<AppState<S>>) -> Router {
    Router::new()
        // Unauthenticated: a join is a few hundred bytes, so a flood of large bodies is
        // refused before it is read.
        .route(
            "/v1/join",
            post(join::<S>).layer(DefaultBodyLimit::max(JOIN_BODY_BYTES)),
        )
        .route("/v1/push", post(push::<S>))
        .route("/v1/pull", get(pull::<S>))
        .route("/v1/snapshot", get(snapshot::<S>))
        .route("/v1/join-codes", post(new_join_code::<S>))
        .route("/v1/devices", get(devices::<S>))
        .route("/v1/devices/{id}/revoke", post(revoke::<S>))
        .route("/v1/audit-heads", get(audit_heads::<S>))
        .route("/v1/digest", get(digest::<S>))
        // A device puts chunks of its own files; any device of the clinic reads them.
        .route(
            "/v1/blobs/{id}/{index}",
            put(blob_put::<S>).layer(DefaultBodyLimit::max(
                clinic_sync_proto::BLOB_CHUNK_BYTES + clinic_sync_proto::BLOB_SEAL_BYTES,
            )),
        )
        .route("/v1/devices/{device}/blobs/{id}", get(blob_info::<S>))
        .route(
            "/v1/devices/{device}/blobs/{id}/{index}",
            get(blob_chunk::<S>),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            budgeted::<S>,
        ))
        .with_state(state)
}

/// The answer to a request that ran past `net::Limits::request`.
pub fn too_slow() -> Response {
    ApiError(
        ErrorCode::BadRequest,
        "the request took too long and was stopped".into(),
    )
    .into_response_with(StatusCode::REQUEST_TIMEOUT)
}

/// An error as the wire carries it.
pub struct ApiError(ErrorCode, String);

impl ApiError {
    fn into_response_with(self, status: StatusCode) -> Response {
        (
            status,
            Json(ErrorBody {
                code: self.0,
                message: self.1,
            }),
        )
            .into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self.0 {
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Revoked => StatusCode::FORBIDDEN,
            ErrorCode::JoinCodeInvalid => StatusCode::FORBIDDEN,
            ErrorCode::DeviceCodeTaken | ErrorCode::SeqConflict | ErrorCode::ClinicHasDevices => {
                StatusCode::CONFLICT
            }
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::QuotaExceeded => StatusCode::INSUFFICIENT_STORAGE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        self.into_response_with(status)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Api(code, m) => ApiError(code, m),
            StoreError::Db(m) => {
                eprintln!("clinicdesk-server: database error: {m}");
                ApiError(ErrorCode::Internal, "the server's database failed".into())
            }
        }
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError(ErrorCode::BadRequest, message.into())
}

type ApiResult<T> = Result<Json<T>, ApiError>;

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

pub fn random_token() -> String {
    use base64::Engine;
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("the OS random source failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A new human join code (its full text: only the inviter and the new PC see it).
pub fn random_join_code() -> String {
    loop {
        let mut b = [0u8; 64];
        getrandom::fill(&mut b).expect("the OS random source failed");
        if let Some(code) = clinic_sync_proto::join_code_from_random(&b) {
            return code;
        }
    }
}

/// A random device code: three symbols, four after many clashes.
pub fn new_device_code(attempt: u32) -> String {
    let len = if attempt < 50 { 3 } else { 4 };
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random source failed");
    b.iter()
        .filter(|x| **x < 248)
        .take(len)
        .map(|x| clinic_sync_proto::JOIN_ALPHABET[(*x % 31) as usize] as char)
        .collect()
}

/// The snapshot cursor's text: `entity/entity_id` (entities have no `/`).
pub fn cursor(entity: &str, id: &str) -> String {
    format!("{entity}/{id}")
}

fn parse_cursor(s: &str) -> Result<(String, String), ApiError> {
    s.split_once('/')
        .map(|(e, i)| (e.to_string(), i.to_string()))
        .ok_or_else(|| bad("the cursor is entity/id"))
}

/// The caller's address (the connection's peer), for limits on unauthenticated callers.
fn peer(parts: &Parts) -> String {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".into(), |c| c.0.ip().to_string())
}

/// The authenticated device of a request, rate-limited.
///
/// The token is always looked up (an index probe): a valid token is never refused because of
/// what else comes from its address. Only unknown tokens count against the address, and an
/// address that has used up its failures gets `rate_limited` instead of `unauthorized` for
/// its next unknown ones, so a guesser learns nothing faster. A valid token is limited per
/// device.
///
/// Then it takes the request's places: one of the device's few, one of the clinic's two for a
/// heavy read (a page, the digest), and the request's room in memory (`Room`), from the
/// clinic's share and from the budget, in that order: what waits in a queue holds no memory.
pub struct Authed(pub DeviceAuth, pub Places);

/// A request's places, held until its handler is done (its room, until the answer is sent).
pub struct Places {
    _device: tokio::sync::OwnedSemaphorePermit,
    _heavy: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Calls that read a page or the whole clinic.
fn is_heavy(path: &str) -> bool {
    path.starts_with("/v1/pull")
        || path.starts_with("/v1/snapshot")
        || path.starts_with("/v1/digest")
}

impl<S: Store> FromRequestParts<Arc<AppState<S>>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState<S>>,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .filter(|t| !t.is_empty() && t.len() <= 128)
            .ok_or(ApiError(ErrorCode::Unauthorized, "no device token".into()))?;
        let Some(device) = state.store.device_by_token(&sha256_hex(token)).await? else {
            let from = format!("bad-token:{}", peer(parts));
            return Err(if state.limiter.allow(&from) {
                ApiError(ErrorCode::Unauthorized, "unknown device token".into())
            } else {
                ApiError(
                    ErrorCode::RateLimited,
                    "too many requests with unknown tokens".into(),
                )
            });
        };
        if device.revoked {
            return Err(ApiError(
                ErrorCode::Revoked,
                "this device was revoked".into(),
            ));
        }
        if !state.limiter.allow(&device.device_id) {
            return Err(ApiError(
                ErrorCode::RateLimited,
                "too many requests from this device".into(),
            ));
        }
        let Some(place) = state.device_gates.enter(&device.device_id).await else {
            return Err(busy());
        };
        let heavy = if is_heavy(parts.uri.path()) {
            Some(
                state
                    .clinic_gates
                    .enter(&device.clinic_id)
                    .await
                    .ok_or_else(busy)?,
            )
        } else {
            None
        };
        if let Some(room) = parts.extensions.get::<Room>() {
            let share = state
                .clinic_shares
                .enter_many(&device.clinic_id, Budget::units(room.needed))
                .await
                .ok_or_else(busy)?;
            let all = state.budget.reserve(room.needed).await.ok_or_else(busy)?;
            room.keep(share);
            room.keep(all);
        }
        // The connection has shown a valid token: it is no longer one a stranger opened, and
        // is kept when the server is full (`net`).
        if let Some(p) = parts.extensions.get::<net::Proven>() {
            p.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(Authed(
            device,
            Places {
                _device: place,
                _heavy: heavy,
            },
        ))
    }
}

fn check_name(what: &str, s: &str, max: usize) -> Result<(), ApiError> {
    // Names people read (a device's) carry no direction overrides or invisible characters
    // either: one PC can't pass itself off as another in the device list.
    let invisible = s.chars().any(clinic_sync_proto::is_invisible);
    if !clinic_sync_proto::is_printable(s, max) || invisible {
        return Err(bad(format!(
            "{what} must be 1 to {max} printable characters"
        )));
    }
    Ok(())
}

/// What a push must look like before a store sees it.
fn check_push(req: &PushRequest) -> Result<(), ApiError> {
    if req.changes.len() > MAX_BATCH {
        return Err(bad(format!("at most {MAX_BATCH} changes per push")));
    }
    for (i, c) in req.changes.iter().enumerate() {
        clinic_sync_proto::check_change_fields(c).map_err(bad)?;
        if i > 0 && Some(c.seq) != req.changes[i - 1].seq.checked_add(1) {
            return Err(bad("changes must be in seq order without gaps"));
        }
        // Stamps compare as text, so a made-up one ("~~~~") would win over every real version
        // for good: `check_change_fields` takes only stamps as PCs make them, and one too far
        // ahead of the server's clock is kept but refused (`store::refusal`). No content is
        // larger than a row may be (every row fits in a push).
        // The content is the PCs' business (sealed under the clinic's key): only its
        // presence is checked. A delete may carry a sealed marker.
        if c.op != clinic_sync_proto::Op::Delete && c.after.as_deref().is_none_or(str::is_empty) {
            return Err(bad("an insert or update has its after-image"));
        }
    }
    if let Some(h) = &req.audit_head {
        check_name("audit hash", &h.hash, 128)?;
    }
    Ok(())
}

async fn join<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    axum::extract::ConnectInfo(from): axum::extract::ConnectInfo<SocketAddr>,
    Json(req): Json<JoinRequest>,
) -> ApiResult<JoinResponse> {
    // Unauthenticated. Only failed joins count against the address (a code has ~99 bits, so
    // guessing is hopeless anyway): a real code always joins, whatever else comes from its
    // address; an address that used up its failures hears `rate_limited` for further ones.
    let failed = |e: ApiError| -> ApiError {
        if st.limiter.allow(&format!("join:{}", from.ip())) {
            e
        } else {
            ApiError(ErrorCode::RateLimited, "too many failed joins".into())
        }
    };
    if req.code.len() != 64 || !req.code.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(failed(ApiError(
            ErrorCode::JoinCodeInvalid,
            "malformed join code".into(),
        )));
    }
    check_name("device name", &req.device_name, 100)?;
    if let Some(code) = &req.device_code {
        let ok = (2..=8).contains(&code.len())
            && code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !ok {
            return Err(bad("a device code is 2 to 8 capital letters and digits"));
        }
    }
    let token = random_token();
    let device_id = uuid::Uuid::now_v7().to_string();
    let joined = st
        .store
        .redeem(
            &sha256_hex(&req.code),
            NewDevice {
                id: device_id.clone(),
                name: req.device_name.trim().to_string(),
                code: req.device_code,
                token_hash: sha256_hex(&token),
            },
            (st.clock)(),
        )
        .await
        .map_err(|e| match e {
            StoreError::Api(ErrorCode::JoinCodeInvalid, m) => {
                failed(ApiError(ErrorCode::JoinCodeInvalid, m))
            }
            e => e.into(),
        })?;
    Ok(Json(JoinResponse {
        clinic_id: joined.clinic_id,
        clinic_name: joined.clinic_name,
        device_id,
        device_code: joined.device_code,
        device_number: joined.device_number,
        token,
        sealed: joined.sealed,
    }))
}

async fn push<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    Authed(device, _place): Authed,
    Json(req): Json<PushRequest>,
) -> ApiResult<PushResponse> {
    check_push(&req)?;
    Ok(Json(st.store.push(&device, &req, (st.clock)()).await?))
}

#[derive(Deserialize)]
struct PullQuery {
    after: i64,
    limit: Option<u32>,
}

async fn pull<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    Authed(device, _place): Authed,
    Query(q): Query<PullQuery>,
) -> ApiResult<PullResponse> {
    let limit = q
        .limit
        .unwrap_or(MAX_BATCH as u32)
        .clamp(1, MAX_BATCH as u32);
    // The store cuts the page at `MAX_PAGE_BYTES` from the sizes, before reading content.
    Ok(Json(
        st.store
            .pull(&device, q.after.max(0), limit, (st.clock)())
            .await?,
    ))
}

#[derive(Deserialize)]
struct SnapshotQuery {
    after: Option<String>,
    entity: Option<String>,
    limit: Option<u32>,
}

async fn snapshot<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    Authed(device, _place): Authed,
    Query(q): Query<SnapshotQuery>,
) -> ApiResult<SnapshotPage> {
    let limit = q.limit.unwrap_or(5000).clamp(1, 20_000);
    let after = q.after.as_deref().map(parse_cursor).transpose()?;
    Ok(Json(
        st.store.snapshot(&device, after, q.entity, limit).await?,
    ))
}

async fn new_join_code<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    Authed(device, _place): Authed,
    Json(req): Json<NewJoinCode>,
) -> ApiResult<JoinCode> {
    if req.code.len() != 64 || !req.code.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("the code's server half is 64 hex digits"));
    }
    if !(1..=7 * 24 * 60).contains(&req.valid_minutes) {
        return Err(bad("a join code is valid for 1 minute to 7 days"));
    }
    if req.sealed.as_ref().is_some_and(|s| s.len() > 64 * 1024) {
        return Err(bad("the sealed part is too large"));
    }
    let expires = (st.clock)() + Duration::minutes(req.valid_minutes.into());
    st.store
        .add_join_code(
            &device.clinic_id,
            &sha256_hex(&req.code),
            req.sealed.as_deref(),
            expires,
            Some(&device.device_id),
            (st.clock)(),
        )
        .await?;
    Ok(Json(JoinCode {
        expires_at: store::ts(expires),
    }))
}

async fn devices<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    Authed(device, _place): Authed,
) -> ApiResult<Vec<Device>> {
    Ok(Json(st.store.devices(&device.clinic_id).await?))
}

async fn revoke<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    Authed(device, _place): Authed,
    Path(id): Path<String>,
) -> ApiResult<Device> {
    Ok(Json(
        st.store
            .revoke(&device.clinic_id, &id, (st.clock)())
            .await?,
    ))
}

#[derive(Deserialize)]
struct HeadsQuery {
    device: String,
}

async fn audit_heads<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    Authed(device, _place): Authed,
    Query(q): Query<HeadsQuery>,
) -> ApiResult<Vec<HeadRecord>> {
    Ok(Json(
        st.store.audit_heads(&device.clinic_id, &q.device).await?,
    ))
}

async fn digest<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    Authed(device, _place): Authed,
) -> ApiResult<String> {
    Ok(Json(st.store.digest(&device.clinic_id).await?))
}

#[derive(Deserialize)]
struct BlobQuery {
    size: u64,
}

fn check_blob_id(id: &str) -> Result<(), ApiError> {
    if clinic_sync_proto::is_blob_id(id) {
        Ok(())
    } else {
        Err(bad("a blob id is 64 lowercase hex digits"))
    }
}

/// One sealed chunk of a blob, of exactly the length its place in the blob gives.
async fn blob_put<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    Authed(device, _place): Authed,
    Path((id, index)): Path<(String, u32)>,
    Query(q): Query<BlobQuery>,
    body: Bytes,
) -> ApiResult<BlobInfo> {
    check_blob_id(&id)?;
    if q.size == 0 || q.size > clinic_sync_proto::MAX_BLOB_BYTES {
        return Err(bad("a blob is 1 byte to 20 MiB"));
    }
    if clinic_sync_proto::blob_chunk_len(q.size, index) != Some(body.len()) {
        return Err(bad("the chunk's length does not fit its place in the blob"));
    }
    Ok(Json(
        st.store
            .blob_put(
                &device,
                store::BlobPut {
                    id,
                    size: q.size,
                    chunks: clinic_sync_proto::blob_chunks(q.size),
                    index,
                    data: body.to_vec(),
                    quota: st.blob_quota,
                    now: (st.clock)(),
                },
            )
            .await?,
    ))
}

async fn blob_info<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    Authed(device, _place): Authed,
    Path((owner, id)): Path<(String, String)>,
) -> ApiResult<BlobInfo> {
    check_blob_id(&id)?;
    st.store
        .blob_info(&device.clinic_id, &owner, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError(ErrorCode::NotFound, "no such blob".into()))
}

async fn blob_chunk<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    Authed(device, _place): Authed,
    Path((owner, id, index)): Path<(String, String, u32)>,
) -> Result<Response, ApiError> {
    check_blob_id(&id)?;
    let data = st
        .store
        .blob_chunk(&device.clinic_id, &owner, &id, index)
        .await?
        .ok_or_else(|| ApiError(ErrorCode::NotFound, "no such chunk".into()))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        data,
    )
        .into_response())
}

/// Makes a clinic and its first join code (what `make server` prints for the first PC).
pub async fn bootstrap_clinic<S: Store>(
    store: &S,
    name: &str,
    now: DateTime<Utc>,
) -> Result<(String, String), StoreError> {
    let clinic = store.create_clinic(name, now).await?;
    let code = random_join_code();
    store
        .add_join_code(
            &clinic,
            &sha256_hex(&clinic_sync_proto::join_code_auth(&code)),
            None,
            now + Duration::days(7),
            None,
            now,
        )
        .await?;
    Ok((clinic, code))
}

/// Serves HTTPS on `addr` until the handle stops it. Returns once the listener is bound,
/// with the bound address (port 0 picks a free one), the handle and the server task.
pub async fn serve<S: Store>(
    state: Arc<AppState<S>>,
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
) -> std::io::Result<(
    SocketAddr,
    net::Handle,
    tokio::task::JoinHandle<std::io::Result<()>>,
)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    // Expired invitations go a minute at most after they expire, here only: a join or a new
    // code costs no sweep (`forget_expired_invitations`).
    let sweeper = Arc::downgrade(&state);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            let Some(st) = sweeper.upgrade() else {
                return;
            };
            if let Err(e) = st.store.forget_expired_invitations((st.clock)()).await {
                eprintln!("clinicdesk-server: forgetting expired invitations: {e}");
            }
        }
    });
    let limits = state.limits.clone();
    let (handle, task) = net::spawn(listener, tls, router(state), limits);
    Ok((bound, handle, task))
}
