//! An HTTP/1.1 proxy that injects faults between a client (berth) and a
//! registry, for testing retries, resumption and timeouts.
//!
//! ```ignore
//! let Some(reg) = Registry::start() else { return };
//! let proxy = FaultProxy::start(&reg.addr(), Faults {
//!     drop_response_after: 1.0,
//!     path_contains: Some("/blobs/".into()),
//!     max_faults: Some(2),
//!     ..Faults::none()
//! });
//! // point berth at proxy.addr() ...
//! assert_eq!(proxy.stats().drop_response, 2);
//! ```
//!
//! Design: one thread per client connection, one request per connection.
//! The proxy reads the request head, decides a fault, and otherwise opens a
//! fresh connection upstream, forwards the head (with `Connection: close`,
//! `Host` unchanged so that the registry's absolute `Location` headers point
//! back at the proxy) and streams the body, then streams the response back
//! (also with `Connection: close`) and closes. Bodies are never buffered
//! whole: 1 GiB layers pass in 64 KiB pieces. Chunked bodies pass through
//! byte for byte, as do `Range` requests and their 206 answers.
//!
//! Faults are drawn from a seeded PRNG (splitmix64), one decision per
//! request that matches the filters, so the same seed gives the same faults
//! for the same sequence of requests. With concurrent clients the sequence
//! is the order in which request heads arrive, which may vary.

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::registry::http::{self, Body};

/// Piece size for streaming bodies.
const BUF: usize = 64 * 1024;
/// Where in a chunked or close-delimited body (length unknown in advance) a
/// mid-body fault may land: a random offset below this many raw bytes. A
/// chunked body that ends sooner gets the fault just before its last chunk.
const UNKNOWN_LENGTH_SPAN: u64 = 1024 * 1024;

/// The kinds of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// 500 Internal Server Error, not forwarded.
    Status500,
    /// 429 Too Many Requests with `Retry-After: 1`, not forwarded.
    Status429,
    /// Forwarded; the response is cut after a random number of body bytes
    /// (a body-less response: cut before its head, after the upstream
    /// handled the request).
    DropResponse,
    /// The head and a random prefix of the body are forwarded, then both
    /// connections are closed without an answer (a body-less request is
    /// forwarded whole and left unanswered).
    DropRequest,
    /// Forwarded; the response pauses for [`Faults::stall_for`] at a random
    /// point of its body (a body-less response: before its head).
    Stall,
}

/// What to inject. Probabilities are per matching request and exclusive
/// (one draw picks at most one fault), so they must add up to at most 1.
#[derive(Clone, Debug)]
pub struct Faults {
    /// PRNG seed: the same seed and requests give the same faults.
    pub seed: u64,
    pub status_500: f64,
    pub status_429: f64,
    pub drop_response_after: f64,
    pub drop_request: f64,
    pub stall: f64,
    /// How long a [`Fault::Stall`] pauses.
    pub stall_for: Duration,
    /// Only requests whose target (path and query) contains this string.
    pub path_contains: Option<String>,
    /// Only requests with this method (case-insensitive), e.g. `"GET"`.
    pub method: Option<String>,
    /// Let this many matching requests through before faults may start.
    pub skip_first: usize,
    /// Stop injecting after this many faults, so a retrying client
    /// eventually succeeds.
    pub max_faults: Option<usize>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            seed: 0x5eed_f00d,
            status_500: 0.0,
            status_429: 0.0,
            drop_response_after: 0.0,
            drop_request: 0.0,
            stall: 0.0,
            stall_for: Duration::from_secs(2),
            path_contains: None,
            method: None,
            skip_first: 0,
            max_faults: None,
        }
    }
}

impl Faults {
    /// No faults: a transparent proxy (still counting requests).
    pub fn none() -> Faults {
        Faults::default()
    }

    fn validate(&self) {
        let all = [
            ("status_500", self.status_500),
            ("status_429", self.status_429),
            ("drop_response_after", self.drop_response_after),
            ("drop_request", self.drop_request),
            ("stall", self.stall),
        ];
        for (name, p) in all {
            assert!(
                (0.0..=1.0).contains(&p),
                "Faults::{name} = {p} is not a probability"
            );
        }
        let sum: f64 = all.iter().map(|(_, p)| p).sum();
        assert!(
            sum <= 1.0 + 1e-9,
            "fault probabilities add up to {sum} > 1: {self:?}"
        );
    }

    fn matches(&self, method: &str, target: &str) -> bool {
        self.path_contains
            .as_deref()
            .is_none_or(|p| target.contains(p))
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
    }
}

/// Counters, as returned by [`FaultProxy::stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Request heads read (faulted or not).
    pub requests: usize,
    pub status_500: usize,
    pub status_429: usize,
    pub drop_response: usize,
    pub drop_request: usize,
    pub stall: usize,
}

impl Stats {
    /// Faults injected, all kinds.
    pub fn faults(&self) -> usize {
        self.status_500 + self.status_429 + self.drop_response + self.drop_request + self.stall
    }
}

/// One request the proxy saw, and the fault it got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub fault: Option<Fault>,
}

/// The running proxy; Drop stops it (see [`FaultProxy::start`]).
pub struct FaultProxy {
    addr: String,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    upstream: String,
    faults: Faults,
    stop: AtomicBool,
    state: Mutex<State>,
    next_conn: AtomicU64,
    /// Clones of every open socket, by connection, so Drop can shut them
    /// down and unblock their threads' reads and writes.
    sockets: Mutex<HashMap<u64, Vec<TcpStream>>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

struct State {
    rng: SplitMix64,
    matched: usize,
    injected: usize,
    stats: Stats,
    seen: Vec<Seen>,
}

/// A decision for one request: the fault, and where in the body it lands
/// (a fraction of the body's length).
#[derive(Clone, Copy)]
struct Decision {
    fault: Option<Fault>,
    at: f64,
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1:<free port>` forwarding to
    /// `upstream_addr` (`host:port`). Panics on invalid probabilities.
    pub fn start(upstream_addr: &str, faults: Faults) -> FaultProxy {
        faults.validate();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let addr = listener
            .local_addr()
            .expect("fault proxy's local address")
            .to_string();
        // Non-blocking accept polled with a short sleep, so the acceptor
        // notices `stop` without a wake-up connection.
        listener
            .set_nonblocking(true)
            .expect("make the fault proxy's listener non-blocking");
        let shared = Arc::new(Shared {
            upstream: upstream_addr.to_owned(),
            state: Mutex::new(State {
                rng: SplitMix64(faults.seed),
                matched: 0,
                injected: 0,
                stats: Stats::default(),
                seen: Vec::new(),
            }),
            faults,
            stop: AtomicBool::new(false),
            next_conn: AtomicU64::new(0),
            sockets: Mutex::new(HashMap::new()),
            workers: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("fault-proxy-accept".into())
                .spawn(move || accept_loop(listener, &shared))
                .expect("spawn the fault proxy's acceptor")
        };
        FaultProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.state().stats.clone()
    }

    /// Every request seen so far, in arrival order, with its fault.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.state().seen.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // The acceptor exits within one poll interval and closes the listener.
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        // Unblock workers stuck in reads or writes; stalls watch `stop`.
        for streams in lock(&self.shared.sockets).values() {
            for s in streams {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        let workers = std::mem::take(&mut *lock(&self.shared.workers));
        for w in workers {
            let _ = w.join();
        }
    }
}

/// Locks, ignoring poisoning: a panicking worker must not hide the
/// counters from the test (its panic is reported on its own).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn decide(&self, method: &str, target: &str) -> Decision {
        let f = &self.faults;
        let mut st = self.state();
        st.stats.requests += 1;
        let mut decision = Decision {
            fault: None,
            at: 0.0,
        };
        if f.matches(method, target) {
            st.matched += 1;
            // Two draws per matching request, always, so that whether a
            // fault fires never shifts later requests' draws.
            let pick = st.rng.next_f64();
            decision.at = st.rng.next_f64();
            let allowed = st.matched > f.skip_first && f.max_faults.is_none_or(|m| st.injected < m);
            if allowed {
                let mut acc = 0.0;
                for (p, fault) in [
                    (f.status_500, Fault::Status500),
                    (f.status_429, Fault::Status429),
                    (f.drop_response_after, Fault::DropResponse),
                    (f.drop_request, Fault::DropRequest),
                    (f.stall, Fault::Stall),
                ] {
                    acc += p;
                    if pick < acc {
                        decision.fault = Some(fault);
                        break;
                    }
                }
            }
        }
        if let Some(fault) = decision.fault {
            st.injected += 1;
            let counter = match fault {
                Fault::Status500 => &mut st.stats.status_500,
                Fault::Status429 => &mut st.stats.status_429,
                Fault::DropResponse => &mut st.stats.drop_response,
                Fault::DropRequest => &mut st.stats.drop_request,
                Fault::Stall => &mut st.stats.stall,
            };
            *counter += 1;
        }
        st.seen.push(Seen {
            method: method.to_owned(),
            target: target.to_owned(),
            fault: decision.fault,
        });
        decision
    }

    /// Registers a socket for shutdown on Drop.
    fn track(&self, conn: u64, s: &TcpStream) -> io::Result<()> {
        lock(&self.sockets)
            .entry(conn)
            .or_default()
            .push(s.try_clone()?);
        Ok(())
    }

    /// Sleeps for `d`; false if cut short because the proxy is stopping
    /// (the caller then abandons the exchange instead of finishing it).
    fn pause(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while !self.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now >= end {
                return true;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(10)));
        }
        false
    }
}

/// splitmix64 (Steele, Lea, Flood 2014): tiny, and good enough to draw faults.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1): the top 53 bits as a double's mantissa.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn accept_loop(listener: TcpListener, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                let conn = shared.next_conn.fetch_add(1, Ordering::SeqCst);
                let worker = {
                    let shared = Arc::clone(shared);
                    std::thread::Builder::new()
                        .name(format!("fault-proxy-{conn}"))
                        .spawn(move || {
                            // Errors here are the faults' and the peers'
                            // business (closed connections); the client sees
                            // the connection end.
                            let _ = handle(&shared, conn, client);
                            // Close both sides now, whatever clones remain:
                            // a cut must look like a closed connection at once.
                            let streams = lock(&shared.sockets).remove(&conn);
                            for s in streams.unwrap_or_default() {
                                let _ = s.shutdown(Shutdown::Both);
                            }
                        })
                };
                match worker {
                    Ok(w) => {
                        let mut workers = lock(&shared.workers);
                        workers.retain(|w| !w.is_finished());
                        workers.push(w);
                    }
                    Err(e) => eprintln!("fault proxy: cannot spawn a connection thread: {e}"),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => {
                eprintln!("fault proxy: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// What to do at an offset of a body being forwarded.
#[derive(Clone, Copy, Debug)]
enum Action {
    Cut,
    Stall(Duration),
}

/// What the body forwarding ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Done,
    Cut,
}

/// A writer that carries out an [`Action`] once, when `at` raw body bytes
/// have been written; with `at == None` it only writes.
struct Tap<'a, W: Write> {
    out: W,
    written: u64,
    at: Option<(u64, Action)>,
    shared: &'a Shared,
}

impl<W: Write> Tap<'_, W> {
    fn send(&mut self, mut buf: &[u8]) -> io::Result<Flow> {
        if let Some((at, _)) = self.at {
            let before = at.saturating_sub(self.written).min(buf.len() as u64) as usize;
            if self.written + buf.len() as u64 > at {
                self.out.write_all(&buf[..before])?;
                self.written += before as u64;
                buf = &buf[before..];
                if self.fire()? == Flow::Cut {
                    return Ok(Flow::Cut);
                }
            }
        }
        self.out.write_all(buf)?;
        self.written += buf.len() as u64;
        Ok(Flow::Done)
    }

    /// Carries out the pending action now, if any.
    fn fire(&mut self) -> io::Result<Flow> {
        match self.at.take() {
            Some((_, Action::Cut)) => Ok(Flow::Cut),
            Some((_, Action::Stall(d))) => {
                // What was sent so far must reach the client before the pause.
                self.out.flush()?;
                Ok(if self.shared.pause(d) {
                    Flow::Done
                } else {
                    Flow::Cut
                })
            }
            None => Ok(Flow::Done),
        }
    }
}

/// Copies a body of kind `body` from `src` to `tap`, raw (chunked framing
/// included).
fn forward_body<R: io::BufRead, W: Write>(
    src: &mut R,
    tap: &mut Tap<'_, W>,
    body: Body,
) -> io::Result<Flow> {
    match body {
        Body::Empty => Ok(Flow::Done),
        Body::Length(n) => copy_exact(src, tap, n),
        Body::UntilClose => {
            let mut buf = vec![0u8; BUF];
            loop {
                let n = src.read(&mut buf)?;
                if n == 0 {
                    return Ok(Flow::Done);
                }
                if tap.send(&buf[..n])? == Flow::Cut {
                    return Ok(Flow::Cut);
                }
            }
        }
        Body::Chunked => loop {
            let line = http::read_line(src)?.ok_or_else(|| eof("chunked body cut short"))?;
            let size = http::chunk_size(&line)?;
            if size == 0 {
                // A mid-body fault not reached yet lands before the last
                // chunk, so that the client does see an incomplete body.
                if tap.fire()? == Flow::Cut {
                    return Ok(Flow::Cut);
                }
                tap.send(format!("{line}\r\n").as_bytes())?;
                // Trailer fields up to the empty line.
                loop {
                    let t =
                        http::read_line(src)?.ok_or_else(|| eof("chunked trailer cut short"))?;
                    tap.send(format!("{t}\r\n").as_bytes())?;
                    if t.is_empty() {
                        return Ok(Flow::Done);
                    }
                }
            }
            if tap.send(format!("{line}\r\n").as_bytes())? == Flow::Cut {
                return Ok(Flow::Cut);
            }
            // The data and its CRLF.
            if copy_exact(src, tap, size + 2)? == Flow::Cut {
                return Ok(Flow::Cut);
            }
        },
    }
}

fn copy_exact<R: Read, W: Write>(src: &mut R, tap: &mut Tap<'_, W>, n: u64) -> io::Result<Flow> {
    let mut buf = vec![0u8; BUF.min(n as usize)];
    let mut left = n;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let got = src.read(&mut buf[..want])?;
        if got == 0 {
            return Err(eof("body cut short"));
        }
        if tap.send(&buf[..got])? == Flow::Cut {
            return Ok(Flow::Cut);
        }
        left -= got as u64;
    }
    Ok(Flow::Done)
}

fn eof(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, what.to_owned())
}

/// The offset in a body of kind `body` where a fault drawn at `at` lands:
/// strictly inside a body of known length, so at least one byte is missing
/// after a cut. `None` for an empty body.
fn offset(body: Body, at: f64) -> Option<u64> {
    match body {
        Body::Empty => None,
        Body::Length(n) => Some(((n as f64 * at) as u64).min(n - 1)),
        Body::Chunked | Body::UntilClose => Some((UNKNOWN_LENGTH_SPAN as f64 * at) as u64),
    }
}

/// A complete canned response (for injected statuses and upstream errors).
fn canned(status: &str, extra: &str, code: &str) -> Vec<u8> {
    let body = format!(
        "{{\"errors\":[{{\"code\":\"{code}\",\"message\":\"injected by the test fault proxy\",\"detail\":null}}]}}"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves one client connection: one request, one response.
fn handle(shared: &Shared, conn: u64, client: TcpStream) -> io::Result<()> {
    client.set_nonblocking(false)?;
    shared.track(conn, &client)?;
    let mut from_client = BufReader::with_capacity(BUF, client.try_clone()?);
    let mut to_client = &client;
    let Some(mut req) = http::read_head(&mut from_client)? else {
        return Ok(());
    };
    let (method, target) = req.method_and_target()?;
    let req_body = http::request_body(&req)?;
    let expects_continue = req
        .get("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    let decision = shared.decide(&method, &target);

    if let Some(fault @ (Fault::Status500 | Fault::Status429)) = decision.fault {
        // A client waiting for 100 Continue sends no body after a final
        // status; any other has its body read and dropped first, so that
        // closing with unread data (a TCP reset) does not destroy the answer.
        if !expects_continue {
            let mut sink = Tap {
                out: io::sink(),
                written: 0,
                at: None,
                shared,
            };
            forward_body(&mut from_client, &mut sink, req_body)?;
        }
        let response = match fault {
            Fault::Status500 => canned("500 Internal Server Error", "", "UNKNOWN"),
            _ => canned(
                "429 Too Many Requests",
                "Retry-After: 1\r\n",
                "TOOMANYREQUESTS",
            ),
        };
        to_client.write_all(&response)?;
        return Ok(());
    }

    // The proxy answers Expect itself and does not pass it on, so the
    // upstream never sends a 100 of its own.
    if expects_continue {
        to_client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let upstream = match TcpStream::connect(&shared.upstream) {
        Ok(s) => s,
        Err(e) => {
            let msg = format!("upstream {}: {e}", shared.upstream);
            eprintln!("fault proxy: {msg}");
            to_client.write_all(&canned("502 Bad Gateway", "", "UNAVAILABLE"))?;
            return Ok(());
        }
    };
    shared.track(conn, &upstream)?;
    for hop in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "expect",
        "te",
        "upgrade",
    ] {
        req.remove(hop);
    }
    req.set("Connection", "close");
    let mut to_upstream = &upstream;
    to_upstream.write_all(&req.to_bytes())?;

    let drop_request = decision.fault == Some(Fault::DropRequest);
    let mut tap = Tap {
        out: &upstream,
        written: 0,
        at: if drop_request {
            offset(req_body, decision.at).map(|o| (o, Action::Cut))
        } else {
            None
        },
        shared,
    };
    match forward_body(&mut from_client, &mut tap, req_body) {
        Ok(Flow::Cut) => return Ok(()),
        Ok(Flow::Done) if drop_request => return Ok(()),
        Ok(Flow::Done) => {}
        // Either the upstream answered early (e.g. 401) and stopped
        // reading, or the client went away mid-body. Half-close upstream so
        // it sees the body end instead of waiting for the rest, then relay
        // whatever it answers (to a client that may no longer be there).
        Err(_) => {
            let _ = upstream.shutdown(Shutdown::Write);
        }
    }

    let mut from_upstream = BufReader::with_capacity(BUF, upstream.try_clone()?);
    let (status, mut resp) = loop {
        let head = http::read_head(&mut from_upstream)?
            .ok_or_else(|| eof("upstream closed before a response"))?;
        let status = head.status()?;
        if (100..200).contains(&status) && status != 101 {
            // Interim responses pass through (HTTP/1.1 clients expect them).
            to_client.write_all(&head.to_bytes())?;
            continue;
        }
        break (status, head);
    };
    let resp_body = http::response_body(&method, status, &resp)?;
    for hop in ["connection", "keep-alive", "proxy-connection"] {
        resp.remove(hop);
    }
    resp.set("Connection", "close");

    let action = match decision.fault {
        Some(Fault::DropResponse) => Some(Action::Cut),
        Some(Fault::Stall) => Some(Action::Stall(shared.faults.stall_for)),
        _ => None,
    };
    let at = offset(resp_body, decision.at);
    match (action, at) {
        // Nothing to cut or pause inside: act before the head.
        (Some(Action::Cut), None) => return Ok(()),
        (Some(Action::Stall(d)), None) if !shared.pause(d) => return Ok(()),
        _ => {}
    }
    to_client.write_all(&resp.to_bytes())?;
    let mut tap = Tap {
        out: to_client,
        written: 0,
        at: action.zip(at).map(|(a, o)| (o, a)),
        shared,
    };
    forward_body(&mut from_upstream, &mut tap, resp_body)?;
    to_client.flush()?;
    Ok(())
}
