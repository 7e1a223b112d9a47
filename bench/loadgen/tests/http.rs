//! The generator against a real tiny HTTP/1.1 server on 127.0.0.1: it must report the statuses
//! the server sent, count refusals without Retry-After, read Server-Timing, and open a new
//! connection after the server's `Connection: close`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// Answers request n (counted over all connections) with 429 + Retry-After when n % 3 == 2, else
/// 503 without it when n % 5 == 4, else 200 with `Server-Timing: total;dur=2.5`; every 10th
/// answer closes its connection. Returns the port and the count it sent of each status.
fn serve() -> (u16, Arc<Mutex<BTreeMap<u16, u64>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = Arc::new(Mutex::new(BTreeMap::new()));
    let counter = Arc::new(AtomicU64::new(0));
    let (sent_by_server, counter) = (Arc::clone(&sent), counter);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let (sent, counter) = (Arc::clone(&sent_by_server), Arc::clone(&counter));
            thread::spawn(move || answer(stream.unwrap(), &sent, &counter));
        }
    });
    (port, sent)
}

fn answer(stream: TcpStream, sent: &Mutex<BTreeMap<u16, u64>>, counter: &AtomicU64) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut length = 0;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return; // the client closed
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        reader.read_exact(&mut vec![0; length]).unwrap();
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let (status, extra) = match n {
            _ if n % 3 == 2 => (429, "Retry-After: 1\r\n"),
            _ if n % 5 == 4 => (503, ""),
            _ => (200, "Server-Timing: total;dur=2.5\r\n"),
        };
        let close = if n % 10 == 9 {
            "Connection: close\r\n"
        } else {
            ""
        };
        let body = "{\"ok\": true}";
        let head = format!(
            "HTTP/1.1 {status} X\r\n{extra}{close}Content-Length: {}\r\n\r\n",
            body.len()
        );
        *sent.lock().unwrap().entry(status).or_default() += 1;
        stream
            .write_all(format!("{head}{body}").as_bytes())
            .unwrap();
        if !close.is_empty() {
            return;
        }
    }
}

fn run(port: u16, args: &[&str]) -> String {
    let body = std::env::temp_dir().join(format!("loadgen-test-{port}.json"));
    std::fs::write(&body, b"{\"x\": 1}").unwrap();
    let url = format!("http://127.0.0.1:{port}/predict");
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "http",
            "--url",
            &url,
            "--body",
            body.to_str().unwrap(),
            "--warmup",
            "0",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The number after `"key": ` in the generator's one-line JSON.
fn field(json: &str, key: &str) -> f64 {
    let start = json
        .find(&format!("\"{key}\": "))
        .unwrap_or_else(|| panic!("{key} in {json}"))
        + key.len()
        + 4;
    let end = json[start..].find([',', '}']).unwrap() + start;
    json[start..end].parse().unwrap()
}

fn statuses(counts: &BTreeMap<u16, u64>) -> String {
    let parts: Vec<String> = counts
        .iter()
        .map(|(k, v)| format!("\"{k}\": {v}"))
        .collect();
    format!("\"statuses\": {{{}}}", parts.join(", "))
}

#[test]
fn open_loop_reports_what_the_server_sent() {
    let (port, sent) = serve();
    let json = run(
        port,
        &["--rate", "600", "--duration", "1", "--connections", "8"],
    );
    let sent = sent.lock().unwrap().clone();
    assert_eq!(
        sent.values().sum::<u64>(),
        600,
        "request i due at i/rate: 600 in 1 s"
    );
    assert_eq!(sent[&429], 200);
    assert!(json.contains(&statuses(&sent)), "{json} vs {sent:?}");
    assert_eq!(field(&json, "requests"), 600.0);
    assert_eq!(field(&json, "errors"), (sent[&429] + sent[&503]) as f64);
    assert_eq!(
        field(&json, "refused_without_retry_after"),
        sent[&503] as f64
    );
    assert_eq!(field(&json, "unanswered"), 0.0);
    assert_eq!(field(&json, "server_ok_p50_ms"), 2.5);
    // Loose: the tests share the machine (nice); the benchmark measures the real lag.
    assert!((0.0..200.0).contains(&field(&json, "lag_p99_ms")), "{json}");
    let rate = field(&json, "rate");
    assert!((500.0..=610.0).contains(&rate), "{json}");
}

#[test]
fn closed_loop_keeps_its_connections_busy() {
    let (port, sent) = serve();
    let json = run(port, &["--concurrency", "4", "--duration", "0.5"]);
    let sent = sent.lock().unwrap().clone();
    assert!(sent.values().sum::<u64>() > 100, "{sent:?}");
    assert!(json.contains(&statuses(&sent)), "{json} vs {sent:?}");
    assert_eq!(field(&json, "requests"), sent.values().sum::<u64>() as f64);
}

#[test]
fn a_refused_connection_is_status_0() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // closed again
    let json = run(
        port,
        &[
            "--rate",
            "100",
            "--duration",
            "0.2",
            "--connections",
            "2",
            "--timeout",
            "1",
        ],
    );
    assert!(json.contains("\"statuses\": {\"0\": 20}"), "{json}");
    assert_eq!(field(&json, "errors"), 20.0);
}
