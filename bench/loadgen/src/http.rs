//! HTTP/1.1 on one keep-alive connection: the request's bytes, answers framed by Content-Length,
//! a new connection when the server closed the last one.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The address to connect to and the request's bytes: a POST of `body`, or a GET without one.
pub fn request_bytes(url: &str, body: Option<&[u8]>) -> Result<(SocketAddr, Vec<u8>), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or(format!("--url must be http://...: {url}"))?;
    let (netloc, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let host = if netloc.contains(':') {
        netloc.to_string()
    } else {
        format!("{netloc}:80")
    };
    let address = host
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or(format!("cannot resolve {host}"))?;
    let mut payload = match body {
        None => format!("GET {path} HTTP/1.1\r\nHost: {netloc}\r\n\r\n").into_bytes(),
        Some(body) => format!(
            "POST {path} HTTP/1.1\r\nHost: {netloc}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes(),
    };
    payload.extend_from_slice(body.unwrap_or_default());
    Ok((address, payload))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The value of header `name` (lowercase, with its colon) in a lowercased head, trimmed.
fn header<'a>(head: &'a [u8], name: &[u8]) -> Option<&'a str> {
    let start = find(head, &[b"\r\n", name].concat())? + 2 + name.len();
    let end = find(&head[start..], b"\r\n").map_or(head.len(), |e| start + e);
    std::str::from_utf8(&head[start..end]).ok().map(str::trim)
}

pub struct Answer {
    pub status: u16,
    pub retry_after: bool,
    /// `Server-Timing: total;dur=<ms>`, in seconds.
    pub server: Option<f64>,
}

pub enum Failure {
    /// Refused at connect or cut: counted as status 0, as load.py does.
    Cut,
    /// No answer before the end of `--timeout`: counted as unanswered.
    TimedOut,
}

pub struct Connection {
    address: SocketAddr,
    stream: Option<TcpStream>,
    buffer: Vec<u8>,
    last_used: Instant,
}

impl Connection {
    pub fn open(address: SocketAddr, until: Instant) -> Self {
        let mut connection = Connection {
            address,
            stream: None,
            buffer: Vec::new(),
            last_used: Instant::now(),
        };
        connection.stream = connection.connect(until).ok();
        connection
    }

    fn connect(&self, until: Instant) -> std::io::Result<TcpStream> {
        let limit = until
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let stream = TcpStream::connect_timeout(&self.address, limit)?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// Whether a connection idle for a while was closed by the server (its keep-alive timeout):
    /// a non-blocking peek sees the end of the stream. Checked only after a second idle, so the
    /// two extra system calls are not paid on every request.
    fn closed_while_idle(stream: &TcpStream) -> bool {
        let mut byte = [0u8; 1];
        let _ = stream.set_nonblocking(true);
        let alive = matches!(stream.peek(&mut byte), Err(e) if e.kind() == ErrorKind::WouldBlock);
        let _ = stream.set_nonblocking(false);
        !alive
    }

    pub fn request(&mut self, payload: &[u8], until: Instant) -> Result<Answer, Failure> {
        let result = self.exchange(payload, until);
        self.last_used = Instant::now();
        if result.is_err() {
            self.stream = None;
            self.buffer.clear();
        }
        result
    }

    fn exchange(&mut self, payload: &[u8], until: Instant) -> Result<Answer, Failure> {
        if self.stream.as_ref().is_some_and(|s| {
            self.last_used.elapsed() > Duration::from_secs(1) && Self::closed_while_idle(s)
        }) {
            self.stream = None;
        }
        if self.stream.is_none() {
            self.buffer.clear();
            self.stream = Some(self.connect(until).map_err(|_| Failure::Cut)?);
        }
        let stream = self.stream.as_mut().expect("connected above");
        let left = until
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        stream
            .set_read_timeout(Some(left))
            .map_err(|_| Failure::Cut)?;
        stream.write_all(payload).map_err(|_| Failure::Cut)?;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                let head = self.buffer[..end].to_ascii_lowercase();
                let length: usize = header(&head, b"content-length:")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if self.buffer.len() >= end + 4 + length {
                    let status = std::str::from_utf8(head.get(9..12).unwrap_or_default())
                        .ok()
                        .and_then(|s| s.parse().ok());
                    let answer = Answer {
                        status: status.ok_or(Failure::Cut)?,
                        retry_after: header(&head, b"retry-after:").is_some(),
                        server: header(&head, b"server-timing:")
                            .and_then(|v| v.strip_prefix("total;dur="))
                            .and_then(|v| v.parse::<f64>().ok())
                            .map(|ms| ms / 1000.0),
                    };
                    self.buffer.drain(..end + 4 + length);
                    if header(&head, b"connection:") == Some("close") {
                        self.stream = None;
                    }
                    return Ok(answer);
                }
            }
            match stream.read(&mut chunk) {
                Ok(0) => return Err(Failure::Cut),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(Failure::TimedOut)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(Failure::Cut),
            }
        }
    }
}
