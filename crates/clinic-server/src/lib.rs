//! The ClinicDesk sync server: a clinic's PCs push their change logs here and pull each
//! other's; the server keeps every change and each record's winning version, which is
//! also the clinic's backup. See `clinic_sync_proto` for the calls and `store` for what a
//! backend guarantees.
//!
//! Every request but `join` carries a device token; the device, and so the clinic, comes
//! from the token alone, so no body or path can reach another clinic's data. Tokens are
//! stored as SHA-256 hashes; a revoked device gets `revoked` on every call.

pub mod limit;
pub mod store;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use clinic_sync_proto::{
    Device, ErrorBody, ErrorCode, HeadRecord, JoinCode, JoinRequest, JoinResponse, NewJoinCode,
    PullResponse, PushRequest, PushResponse, SnapshotPage, MAX_BATCH, MAX_BODY_BYTES,
    MAX_PAGE_BYTES,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::limit::RateLimiter;
use crate::store::{DeviceAuth, NewDevice, Store, StoreError};

/// The server's clock: real time, or a fixed offset from it in tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub struct AppState<S> {
    pub store: S,
    pub limiter: RateLimiter,
    pub clock: Clock,
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
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// An error as the wire carries it.
pub struct ApiError(ErrorCode, String);

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
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
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
pub struct Authed(pub DeviceAuth);

impl<S: Store> FromRequestParts<Arc<AppState<S>>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState<S>>,
    ) -> Result<Self, Self::Rejection> {
        // Unknown tokens count against the caller's address; one that has used them up is
        // turned away before its guesses cost a database lookup.
        let from = format!("bad-token:{}", peer(parts));
        if state.limiter.exhausted(&from) {
            return Err(ApiError(
                ErrorCode::RateLimited,
                "too many requests with unknown tokens".into(),
            ));
        }
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError(ErrorCode::Unauthorized, "no device token".into()))?;
        let Some(device) = state.store.device_by_token(&sha256_hex(token)).await? else {
            state.limiter.allow(&from);
            return Err(ApiError(
                ErrorCode::Unauthorized,
                "unknown device token".into(),
            ));
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
        Ok(Authed(device))
    }
}

fn check_name(what: &str, s: &str, max: usize) -> Result<(), ApiError> {
    if s.trim().is_empty() || s.len() > max || s.chars().any(char::is_control) {
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
        if i > 0 && c.seq != req.changes[i - 1].seq + 1 {
            return Err(bad("changes must be in seq order without gaps"));
        }
        if c.seq < 1 {
            return Err(bad("seq starts at 1"));
        }
        let entity_ok = !c.entity.is_empty()
            && c.entity.len() <= 64
            && c.entity
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !entity_ok {
            return Err(bad("entity must be a table name"));
        }
        check_name("entity_id", &c.entity_id, 128)?;
        // A clock stamp as PCs make them (`{ms:013}-{counter:05}`): stamps compare as text,
        // so a made-up one ("~~~~") would win over every real version for good.
        let stamp_ok = c.hlc.len() == 19
            && c.hlc.bytes().enumerate().all(|(i, b)| {
                if i == 13 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        if !stamp_ok {
            return Err(bad("hlc must be a clock stamp (13 digits, '-', 5 digits)"));
        }
        if let Some(base) = &c.base {
            check_name("base", base, 128)?;
        }
        check_name("at", &c.at, 64)?;
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
    // Unauthenticated: a bucket per address, against a flood (a code has ~99 bits, so
    // guessing is hopeless anyway); one caller's flood doesn't stop another's join.
    if !st.limiter.allow(&format!("join:{}", from.ip())) {
        return Err(ApiError(ErrorCode::RateLimited, "too many joins".into()));
    }
    if req.code.len() != 64 || !req.code.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError(
            ErrorCode::JoinCodeInvalid,
            "malformed join code".into(),
        ));
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
    st.store.forget_expired_invitations((st.clock)()).await?;
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
        .await?;
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
    Authed(device): Authed,
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
    Authed(device): Authed,
    Query(q): Query<PullQuery>,
) -> ApiResult<PullResponse> {
    let limit = q
        .limit
        .unwrap_or(MAX_BATCH as u32)
        .clamp(1, MAX_BATCH as u32);
    let page = st
        .store
        .pull(&device, q.after.max(0), limit, (st.clock)())
        .await?;
    Ok(Json(trim_pull(page)))
}

/// How many of `sizes` fit in `MAX_PAGE_BYTES` (at least one).
fn fitting(sizes: impl Iterator<Item = usize>) -> usize {
    let mut total = 0;
    let mut n = 0;
    for size in sizes {
        if n > 0 && total + size > MAX_PAGE_BYTES {
            break;
        }
        total += size;
        n += 1;
    }
    n
}

/// A change's or row's size as the answer carries it (JSON-escaped content, its base).
fn size_of(after: &Option<String>, base: &Option<String>) -> usize {
    let json = |t: &Option<String>| {
        t.as_ref()
            .map_or(0, |t| serde_json::to_string(t).map_or(t.len(), |j| j.len()))
    };
    json(after) + json(base) + 256
}

/// A pull page cut at `MAX_PAGE_BYTES`; the next pull starts after its last change.
fn trim_pull(mut page: PullResponse) -> PullResponse {
    let n = fitting(
        page.changes
            .iter()
            .map(|c| size_of(&c.change.after, &c.change.base)),
    );
    if n < page.changes.len() {
        page.changes.truncate(n);
        page.next = page.changes.last().map_or(page.next, |c| c.server_seq);
        page.more = true;
    }
    page
}

/// A snapshot page cut at `MAX_PAGE_BYTES`; the next page starts after its last row.
fn trim_snapshot(mut page: SnapshotPage) -> SnapshotPage {
    let n = fitting(page.rows.iter().map(|r| size_of(&r.after, &None)));
    if n < page.rows.len() {
        page.rows.truncate(n);
        page.next = page.rows.last().map(|r| cursor(&r.entity, &r.entity_id));
    }
    page
}

#[derive(Deserialize)]
struct SnapshotQuery {
    after: Option<String>,
    entity: Option<String>,
    limit: Option<u32>,
}

async fn snapshot<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    Authed(device): Authed,
    Query(q): Query<SnapshotQuery>,
) -> ApiResult<SnapshotPage> {
    let limit = q.limit.unwrap_or(5000).clamp(1, 20_000);
    let after = q.after.as_deref().map(parse_cursor).transpose()?;
    let page = st.store.snapshot(&device, after, q.entity, limit).await?;
    Ok(Json(trim_snapshot(page)))
}

async fn new_join_code<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    Authed(device): Authed,
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
    st.store.forget_expired_invitations((st.clock)()).await?;
    let expires = (st.clock)() + Duration::minutes(req.valid_minutes.into());
    st.store
        .add_join_code(
            &device.clinic_id,
            &sha256_hex(&req.code),
            req.sealed.as_deref(),
            expires,
            Some(&device.device_id),
        )
        .await?;
    Ok(Json(JoinCode {
        expires_at: store::ts(expires),
    }))
}

async fn devices<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    Authed(device): Authed,
) -> ApiResult<Vec<Device>> {
    Ok(Json(st.store.devices(&device.clinic_id).await?))
}

async fn revoke<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    Authed(device): Authed,
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
    Authed(device): Authed,
    Query(q): Query<HeadsQuery>,
) -> ApiResult<Vec<HeadRecord>> {
    Ok(Json(
        st.store.audit_heads(&device.clinic_id, &q.device).await?,
    ))
}

async fn digest<S: Store>(
    State(st): State<Arc<AppState<S>>>,
    Authed(device): Authed,
) -> ApiResult<String> {
    Ok(Json(st.store.digest(&device.clinic_id).await?))
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
        )
        .await?;
    Ok((clinic, code))
}

/// Serves HTTPS on `addr` until `shutdown` resolves. Returns once the listener is bound,
/// with the bound address (port 0 picks a free one) and the server task.
pub async fn serve<S: Store>(
    state: Arc<AppState<S>>,
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
) -> std::io::Result<(
    SocketAddr,
    axum_server::Handle,
    tokio::task::JoinHandle<std::io::Result<()>>,
)> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    let config = axum_server::tls_rustls::RustlsConfig::from_config(tls);
    // Expired invitations go even when nobody joins or invites (`forget_expired_invitations`).
    let sweeper = Arc::downgrade(&state);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(300));
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
    let app = router(state);
    let server = axum_server::from_tcp_rustls(listener, config)
        .handle(handle.clone())
        .serve(app.into_make_service_with_connect_info::<SocketAddr>());
    Ok((bound, handle, tokio::spawn(server)))
}
