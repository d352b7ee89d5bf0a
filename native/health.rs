//! `health()`: whether a model is serving, and how fast, for a service's health check.
use napi_derive::napi;

/// Seconds per call over the last calls that returned (at most 1,000); `null` before the first.
#[napi(object, js_name = "HealthLatency")]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latency {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// Calls in the model now: running, and waiting for `maxConcurrentCalls` (the TypeScript layer
/// queues them).
#[napi(object, js_name = "HealthQueue")]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Queue {
    pub running: u32,
    pub waiting: u32,
}

#[napi(object, js_name = "ModelHealth")]
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// `'failed'` when the model's last call that ran failed in the backend (not for bad input or
    /// an abort); `'degraded'` once it fell back to the CPU (`cpuFallback`); else `'ok'`.
    #[napi(ts_type = "'ok' | 'degraded' | 'failed'")]
    pub status: String,
    /// Where it runs now (`'cpu'` after a fallback).
    pub backend: String,
    pub device: String,
    /// Seconds since it was loaded.
    pub uptime_seconds: f64,
    /// Calls made, failed and aborted ones included.
    pub calls: i64,
    /// Calls that failed (bad input included; aborts are not failures).
    pub errors: i64,
    pub last_error: Option<String>,
    pub latency: Latency,
    pub queue: Queue,
}

/// The nearest-rank percentiles of `times`.
pub fn latency(mut times: Vec<f64>) -> Latency {
    if times.is_empty() {
        return Latency::default();
    }
    times.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        let i = ((p / 100.0) * times.len() as f64).ceil() as usize;
        times[i.clamp(1, times.len()) - 1]
    };
    Latency {
        p50: Some(rank(50.0)),
        p95: Some(rank(95.0)),
        p99: Some(rank(99.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let times: Vec<f64> = (1..=100).map(f64::from).collect();
        let l = latency(times);
        assert_eq!((l.p50, l.p95, l.p99), (Some(50.0), Some(95.0), Some(99.0)));
        let one = latency(vec![0.25]);
        assert_eq!((one.p50, one.p99), (Some(0.25), Some(0.25)));
        assert_eq!(latency(vec![]), Latency::default());
    }
}
