//! Requests per device: a token bucket each, in this instance's memory (several instances
//! each allow the rate; the limit is against a runaway PC, not an accounting).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_second: f64, burst: u32) -> Self {
        RateLimiter {
            per_second,
            burst: burst as f64,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from the key's bucket (a device, or an address); false when it is empty.
    pub fn allow(&self, key: &str) -> bool {
        self.bucket(key, true)
    }

    /// Whether the key's bucket is empty, taking nothing: an address that has used up its
    /// failures is turned away before the request costs a database lookup.
    pub fn exhausted(&self, key: &str) -> bool {
        !self.bucket(key, false)
    }

    fn bucket(&self, key: &str, take: bool) -> bool {
        let now = Instant::now();
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(p) => p.into_inner(),
        };
        if !take && !buckets.contains_key(key) {
            return true;
        }
        // Bounded: a flood from many addresses can't grow the map without end (a full map
        // starts again, which at worst gives each key a fresh burst).
        if buckets.len() > 100_000 {
            buckets.clear();
        }
        let (tokens, last) = buckets.entry(key.to_string()).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * self.per_second).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            if take {
                *tokens -= 1.0;
            }
            true
        } else {
            false
        }
    }
}
