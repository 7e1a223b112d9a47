//! Open- and closed-loop HTTP/1.1 load generator: `bench/load.py http` without the Python event
//! loop, which saturates its core near 4,000 requests/s and then measures itself (bench/overload.py).
//! Same flags, same JSON keys (plus `generator` and `connection_wait_p99_ms`).
//!
//!     loadgen http --url http://127.0.0.1:3000/predict --body body.json --rate 4000
//!     loadgen http --url http://127.0.0.1:3000/predict --body body.json --concurrency 64
//!
//! One thread per connection. Open loop (`--rate`): request i is due at start + i/rate; each
//! thread claims the next index from a shared counter when its connection is free and sleeps until
//! that index is due. A request that finds every connection busy is claimed late, and that wait
//! for a connection counts in its latency (no coordinated omission), as in load.py. `lag_p99_ms` is
//! the generator's own lateness: how long after a request could go (its due time, or its claim when
//! it was claimed late) it went. Closed loop (`--concurrency`): each thread sends its next request
//! as soon as its answer is in. Connections are keep-alive, answers framed by Content-Length, and
//! a connection the server closed is opened again for the next request.

mod http;
mod samples;

use http::{request_bytes, Connection};
use samples::{report, Samples};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::thread;
use std::time::{Duration, Instant};
struct Args {
    url: String,
    body: Option<Vec<u8>>,
    rate: Option<f64>,
    concurrency: Option<usize>,
    connections: usize,
    duration: f64,
    warmup: u64,
    timeout: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut raw = std::env::args().skip(1);
    match raw.next().as_deref() {
        Some("http") => {}
        other => {
            return Err(format!(
                "the protocol must be http (got {other:?}; gRPC: bench/load.py)"
            ))
        }
    }
    let mut flags: BTreeMap<String, String> = BTreeMap::new();
    while let Some(flag) = raw.next() {
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => (
                flag.clone(),
                raw.next().ok_or(format!("{flag} needs a value"))?,
            ),
        };
        flags.insert(name, value);
    }
    fn number<T: std::str::FromStr>(
        flags: &mut BTreeMap<String, String>,
        name: &str,
    ) -> Result<Option<T>, String> {
        flags
            .remove(name)
            .map(|v| v.parse().map_err(|_| format!("{name}: not a number: {v}")))
            .transpose()
    }
    let body = match flags.remove("--body") {
        Some(path) => Some(std::fs::read(&path).map_err(|e| format!("--body {path}: {e}"))?),
        None => None,
    };
    let args = Args {
        url: flags.remove("--url").ok_or("--url is required")?,
        body,
        rate: number(&mut flags, "--rate")?,
        concurrency: number(&mut flags, "--concurrency")?,
        connections: number(&mut flags, "--connections")?.unwrap_or(64),
        duration: number(&mut flags, "--duration")?.unwrap_or(10.0),
        warmup: number(&mut flags, "--warmup")?.unwrap_or(200),
        timeout: number(&mut flags, "--timeout")?.unwrap_or(30.0),
    };
    if let Some(unknown) = flags.keys().next() {
        return Err(format!("unknown flag {unknown}"));
    }
    if args.rate.is_some() == args.concurrency.is_some() {
        return Err("give exactly one of --rate and --concurrency".into());
    }
    if args.rate.is_some_and(|r| r <= 0.0) || args.concurrency == Some(0) || args.connections == 0 {
        return Err("--rate, --concurrency and --connections must be positive".into());
    }
    Ok(args)
}

struct Plan {
    address: SocketAddr,
    payload: Vec<u8>,
    rate: Option<f64>,
    duration: Duration,
    timeout: Duration,
    warmup: u64,
    warmed: AtomicU64,
    next: AtomicU64,
    ready: Barrier,
    start: OnceLock<Instant>,
}

fn worker(plan: &Plan) -> Samples {
    let mut connection = Connection::open(plan.address, Instant::now() + plan.timeout);
    while plan.warmed.fetch_add(1, Ordering::Relaxed) < plan.warmup {
        let _ = connection.request(&plan.payload, Instant::now() + plan.timeout);
    }
    // Every connection open and warm before the clock starts; one thread sets the start.
    if plan.ready.wait().is_leader() {
        plan.start.set(Instant::now()).expect("set once");
    }
    plan.ready.wait();
    let start = *plan.start.get().expect("set by the leader");
    let deadline = start + plan.duration;
    let until = deadline + plan.timeout;
    let mut samples = Samples::default();
    loop {
        let claimed = Instant::now();
        let due = match plan.rate {
            None if claimed >= deadline => break,
            None => claimed,
            Some(rate) => {
                let due = start
                    + Duration::from_secs_f64(
                        plan.next.fetch_add(1, Ordering::Relaxed) as f64 / rate,
                    );
                if due >= deadline {
                    break;
                }
                if claimed >= until {
                    samples.unanswered += 1; // still waiting for a connection when time ran out
                    continue;
                }
                if due > claimed {
                    thread::sleep(due - claimed);
                }
                due
            }
        };
        let sent = Instant::now();
        let wait = claimed.saturating_duration_since(due);
        let lag = sent - due.max(claimed);
        let outcome = connection.request(&plan.payload, until);
        let answered = Instant::now();
        // Timed from the due time, less the generator's own lag (as load.py times from when its
        // loop got round to the request): the wire time plus any wait for a connection.
        let latency = answered - due - lag;
        let wire = (answered - sent).as_secs_f64();
        samples.add(
            outcome,
            wire,
            latency.as_secs_f64(),
            lag.as_secs_f64(),
            wait.as_secs_f64(),
        );
    }
    samples
}

fn main() {
    let args = parse_args().unwrap_or_else(|message| {
        eprintln!("loadgen: {message}");
        std::process::exit(2);
    });
    let (address, payload) =
        request_bytes(&args.url, args.body.as_deref()).unwrap_or_else(|message| {
            eprintln!("loadgen: {message}");
            std::process::exit(2);
        });
    let threads = args.concurrency.unwrap_or(args.connections);
    let plan = Arc::new(Plan {
        address,
        payload,
        rate: args.rate,
        duration: Duration::from_secs_f64(args.duration),
        timeout: Duration::from_secs_f64(args.timeout),
        warmup: args.warmup,
        warmed: AtomicU64::new(0),
        next: AtomicU64::new(0),
        ready: Barrier::new(threads),
        start: OnceLock::new(),
    });
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let plan = Arc::clone(&plan);
            // Small stacks: hundreds of threads that each hold one 16 KiB read buffer.
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || worker(&plan))
                .expect("spawn a thread")
        })
        .collect();
    let mut samples = Samples::default();
    for handle in handles {
        samples.merge(handle.join().expect("a worker panicked"));
    }
    let elapsed = plan
        .start
        .get()
        .map_or(0.0, |s| s.elapsed().as_secs_f64())
        .max(1e-9);
    println!("{}", report(samples, elapsed));
}
