//! What the threads saw, merged, and the JSON line that reports it (`bench/load.py`'s keys).

use crate::http::{Answer, Failure};
use std::collections::BTreeMap;

/// What one thread saw, in seconds; merged when the threads are done.
#[derive(Default)]
pub struct Samples {
    latency: Vec<f64>,
    lag: Vec<f64>,
    wait: Vec<f64>,
    ok: Vec<f64>,
    refused: Vec<f64>,
    server_ok: Vec<f64>,
    statuses: BTreeMap<u16, u64>,
    no_retry_after: u64,
    pub unanswered: u64,
}

impl Samples {
    pub fn add(
        &mut self,
        outcome: Result<Answer, Failure>,
        wire: f64,
        latency: f64,
        lag: f64,
        wait: f64,
    ) {
        let answer = match outcome {
            Ok(answer) => answer,
            Err(Failure::Cut) => Answer {
                status: 0,
                retry_after: false,
                server: None,
            },
            Err(Failure::TimedOut) => return self.unanswered += 1,
        };
        *self.statuses.entry(answer.status).or_default() += 1;
        match answer.status {
            200 => {
                self.ok.push(wire);
                self.server_ok.extend(answer.server);
            }
            429 | 503 => {
                self.refused.push(wire);
                self.no_retry_after += u64::from(!answer.retry_after);
            }
            _ => {}
        }
        self.latency.push(latency);
        self.lag.push(lag);
        self.wait.push(wait);
    }

    pub fn merge(&mut self, other: Samples) {
        for (mine, theirs) in [
            (&mut self.latency, other.latency),
            (&mut self.lag, other.lag),
            (&mut self.wait, other.wait),
            (&mut self.ok, other.ok),
            (&mut self.refused, other.refused),
            (&mut self.server_ok, other.server_ok),
        ] {
            mine.extend(theirs);
        }
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        self.no_retry_after += other.no_retry_after;
        self.unanswered += other.unanswered;
    }
}

/// numpy.percentile's default (linear interpolation), in ms, of 0 when there is nothing.
fn percentile_ms(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let position = q / 100.0 * (sorted.len() - 1) as f64;
    let (low, high) = (position.floor() as usize, position.ceil() as usize);
    (sorted[low] + (sorted[high] - sorted[low]) * (position - low as f64)) * 1000.0
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

pub fn report(mut s: Samples, elapsed: f64) -> String {
    for values in [
        &mut s.latency,
        &mut s.lag,
        &mut s.wait,
        &mut s.ok,
        &mut s.refused,
        &mut s.server_ok,
    ] {
        values.sort_by(f64::total_cmp);
    }
    let statuses: Vec<String> = s
        .statuses
        .iter()
        .map(|(k, v)| format!("\"{k}\": {v}"))
        .collect();
    let mut fields = vec![
        (
            "statuses".to_string(),
            format!("{{{}}}", statuses.join(", ")),
        ),
        (
            "refused_without_retry_after".into(),
            s.no_retry_after.to_string(),
        ),
    ];
    for (name, values) in [
        ("ok", &s.ok),
        ("refused", &s.refused),
        ("server_ok", &s.server_ok),
    ] {
        for q in [50.0, 99.0] {
            fields.push((
                format!("{name}_p{q}_ms"),
                round(percentile_ms(values, q), 3).to_string(),
            ));
        }
        fields.push((
            format!("{name}_max_ms"),
            round(percentile_ms(values, 100.0), 3).to_string(),
        ));
    }
    let requests = s.latency.len();
    let errors = requests as u64 - s.statuses.get(&200).copied().unwrap_or(0);
    fields.extend([
        ("unanswered".into(), s.unanswered.to_string()),
        ("requests".into(), requests.to_string()),
        ("errors".into(), errors.to_string()),
        (
            "rate".into(),
            round(requests as f64 / elapsed, 1).to_string(),
        ),
    ]);
    for q in [50.0, 90.0, 99.0] {
        fields.push((
            format!("p{q}_ms"),
            round(percentile_ms(&s.latency, q), 3).to_string(),
        ));
    }
    fields.extend([
        (
            "max_ms".into(),
            round(percentile_ms(&s.latency, 100.0), 3).to_string(),
        ),
        (
            "lag_p99_ms".into(),
            round(percentile_ms(&s.lag, 99.0), 3).to_string(),
        ),
        (
            "connection_wait_p99_ms".into(),
            round(percentile_ms(&s.wait, 99.0), 3).to_string(),
        ),
        ("generator".into(), "\"rust\"".into()),
    ]);
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("\"{k}\": {v}"))
        .collect();
    format!("{{{}}}", body.join(", "))
}
