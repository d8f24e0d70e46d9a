//! Rates and concurrency, in this instance's memory (several instances each allow as much; the
//! limits are against a runaway PC or a stranger, not an accounting).
//!
//! - `RateLimiter`: a token bucket per key. Devices and addresses are kept apart: a flood of
//!   addresses (each a key) can clear only the addresses' table, never a device's bucket.
//! - `Gates`: at most so many requests in flight per key (a device; a clinic's heavy reads),
//!   waiting a moment for a place rather than refusing at once; or so many units of memory
//!   per key (a clinic's share of the `Budget`).
//! - `Budget`: bytes of bodies held at once, in all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    devices: Mutex<HashMap<String, (f64, Instant)>>,
    addresses: Mutex<HashMap<String, (f64, Instant)>>,
}

/// Keys of callers known only by their address (`join:…`, `bad-token:…`).
fn is_address(key: &str) -> bool {
    key.starts_with("join:") || key.starts_with("bad-token:")
}

impl RateLimiter {
    pub fn new(per_second: f64, burst: u32) -> Self {
        RateLimiter {
            per_second,
            burst: burst as f64,
            devices: Mutex::new(HashMap::new()),
            addresses: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from the key's bucket (a device, or an address); false when it is empty.
    pub fn allow(&self, key: &str) -> bool {
        let now = Instant::now();
        let table = if is_address(key) {
            &self.addresses
        } else {
            &self.devices
        };
        let mut buckets = match table.lock() {
            Ok(b) => b,
            Err(p) => p.into_inner(),
        };
        // Bounded: a flood from many addresses can't grow the map without end (a full map
        // starts again, which at worst gives each address a fresh burst). Devices are as
        // many as the server has, and their table is never cleared by others' traffic.
        if is_address(key) && buckets.len() > 100_000 {
            buckets.clear();
        }
        let (tokens, last) = buckets.entry(key.to_string()).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * self.per_second).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// At most `per_key` requests in flight per key; one more waits up to `wait` for a place.
pub struct Gates {
    per_key: usize,
    wait: Duration,
    gates: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Gates {
    pub fn new(per_key: usize, wait: Duration) -> Gates {
        Gates {
            per_key,
            wait,
            gates: Mutex::new(HashMap::new()),
        }
    }

    /// A place for `key`, held until the permit is dropped; none if none came free in time.
    pub async fn enter(&self, key: &str) -> Option<OwnedSemaphorePermit> {
        self.enter_many(key, 1).await
    }

    /// `n` places for `key` at once (a share counted in units: `Budget::units`).
    pub async fn enter_many(&self, key: &str, n: u32) -> Option<OwnedSemaphorePermit> {
        let gate = {
            let mut g = self.gates.lock().unwrap_or_else(|p| p.into_inner());
            // Gates nobody holds are dropped now and then (keys are devices and clinics).
            if g.len() > 10_000 {
                g.retain(|_, s| s.available_permits() < self.per_key);
            }
            g.entry(key.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_key)))
                .clone()
        };
        tokio::time::timeout(self.wait, gate.acquire_many_owned(n))
            .await
            .ok()
            .and_then(Result::ok)
    }
}

/// Bytes of bodies (requests read, answers not yet sent) the server holds at once, in all.
pub struct Budget {
    sem: Arc<Semaphore>,
    wait: Duration,
}

/// The budget's unit: 64 KiB.
const UNIT: usize = 64 * 1024;

impl Budget {
    pub fn new(bytes: usize, wait: Duration) -> Budget {
        Budget {
            sem: Arc::new(Semaphore::new((bytes / UNIT).max(1))),
            wait,
        }
    }

    /// `bytes` in the budget's units (64 KiB), for shares kept in `Gates`.
    pub fn units(bytes: usize) -> u32 {
        bytes.div_ceil(UNIT).max(1) as u32
    }

    /// Room for `bytes`, held until the permit is dropped; none if it didn't come in time.
    pub async fn reserve(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let units = Budget::units(bytes);
        tokio::time::timeout(self.wait, self.sem.clone().acquire_many_owned(units))
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// Gives back what a permit holds beyond `bytes`.
    pub fn shrink(permit: &mut OwnedSemaphorePermit, bytes: usize) {
        let keep = bytes.div_ceil(UNIT).max(1);
        if permit.num_permits() > keep {
            drop(permit.split(permit.num_permits() - keep));
        }
    }
}
