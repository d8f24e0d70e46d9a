//! Latency statistics for the bench binaries: run a closure many times, report
//! percentiles as JSON. (Criterion reports means; the targets here are p95s.)

use std::time::{Duration, Instant};

pub struct Stats {
    pub name: String,
    pub samples: Vec<Duration>,
}

impl Stats {
    pub fn measure(name: &str, warmup: usize, n: usize, mut f: impl FnMut(usize)) -> Stats {
        for i in 0..warmup {
            f(i);
        }
        let mut samples = Vec::with_capacity(n);
        for i in 0..n {
            let t = Instant::now();
            f(warmup + i);
            samples.push(t.elapsed());
        }
        samples.sort();
        Stats {
            name: name.into(),
            samples,
        }
    }

    pub fn pct(&self, p: f64) -> Duration {
        let i = ((self.samples.len() as f64 - 1.0) * p).round() as usize;
        self.samples[i]
    }

    pub fn us(d: Duration) -> f64 {
        (d.as_nanos() as f64 / 10.0).round() / 100.0
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "n": self.samples.len(),
            "p50_us": Self::us(self.pct(0.50)),
            "p95_us": Self::us(self.pct(0.95)),
            "p99_us": Self::us(self.pct(0.99)),
            "max_us": Self::us(*self.samples.last().unwrap()),
        })
    }
}
