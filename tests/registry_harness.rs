//! Self-tests of the registry test infrastructure (tests/support/registry.rs
//! and tests/support/fault_proxy.rs), with plain std HTTP and no berth code:
//! a real `docker-registry` starts with and without auth, blobs go up
//! through a transparent proxy, the proxy injects each kind of fault, the
//! upload counter reads the registry's log right, and nothing is left
//! behind. Tests skip (or fail under `CI`) without `docker-registry`.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use support::fault_proxy::{Fault, FaultProxy, Faults, Stats};
use support::registry::http::{self, Response};
use support::registry::{BlobEventKind, Registry, sha256_digest, upload_blob};

const TIMEOUT: Duration = Duration::from_secs(30);

fn get(addr: &str, target: &str, headers: &[(&str, &str)]) -> std::io::Result<Response> {
    http::request(addr, "GET", target, headers, b"", TIMEOUT)
}

/// `n` bytes that are not all the same, so a shifted or short body shows.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

// ---------------------------------------------------------------------------
// The registry alone.

#[test]
fn registry_starts_without_auth() {
    let Some(reg) = Registry::start() else { return };
    assert!(reg.addr().starts_with("127.0.0.1:"), "{}", reg.addr());
    assert_eq!(reg.url(), format!("http://{}", reg.addr()));
    let r = reg.get_as("/v2/", None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    assert!(reg.credentials().is_none());
}

#[test]
fn registry_with_basic_auth_wants_credentials() {
    let Some(reg) = Registry::start_with_basic_auth("alice", "s3cret:with colon") else {
        return;
    };
    let anonymous = reg.get_as("/v2/", None);
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    assert_eq!(
        anonymous.header("www-authenticate"),
        Some("Basic realm=\"berth-test\"")
    );
    let wrong = reg.get_as("/v2/", Some(("alice", "nope")));
    assert_eq!(wrong.status, 401);
    let right = reg.get_as("/v2/", Some(("alice", "s3cret:with colon")));
    assert_eq!(right.status, 200, "{}", right.text());
    // get() uses the registry's own credentials.
    assert_eq!(reg.get("/v2/").status, 200);

    // Uploads need them too.
    let blob = b"authenticated blob";
    assert!(upload_blob(&reg.addr(), "t/auth", blob, None).is_err());
    let digest = reg.push_blob("t/auth", blob);
    assert_eq!(reg.get(&format!("/v2/t/auth/blobs/{digest}")).body, blob);
    assert_eq!(reg.blob_upload_count(), 1);
}

/// The test-side SHA-256 agrees with coreutils (and the registry, which
/// rejects a wrong digest, agrees in every upload test).
#[test]
fn sha256_matches_coreutils() {
    assert_eq!(
        sha256_digest(b""),
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    for n in [1, 55, 56, 63, 64, 65, 119, 120, 1000, 100_003] {
        let data = pattern(n);
        let file = dir.path().join("data");
        std::fs::write(&file, &data).expect("write data");
        let out = Command::new("sha256sum")
            .arg(&file)
            .output()
            .expect("run sha256sum");
        let hex = String::from_utf8_lossy(&out.stdout)
            .split(' ')
            .next()
            .expect("sha256sum output")
            .to_owned();
        assert_eq!(sha256_digest(&data), format!("sha256:{hex}"), "{n} bytes");
    }
    assert_eq!(http::base64(b"alice:s3cret"), "YWxpY2U6czNjcmV0");
    assert_eq!(http::base64(b"ab"), "YWI=");
    assert_eq!(http::base64(b"a"), "YQ==");
}

/// The upload counter counts completed uploads and mounts, per digest, and
/// the duplicate check catches a blob uploaded twice.
#[test]
fn upload_counter_reads_the_access_log() {
    let Some(reg) = Registry::start() else { return };
    assert_eq!(reg.blob_upload_count(), 0);
    let a = reg.push_blob("t/one", b"blob a");
    let b = reg.push_blob("t/one", b"blob b");
    assert_eq!(reg.blob_upload_count(), 2);
    reg.assert_no_blob_uploaded_twice();

    // A cross-repository mount is a mount, not an upload.
    let mount = reg.request(
        "POST",
        &format!("/v2/t/two/blobs/uploads/?mount={a}&from=t/one"),
        &[],
        b"",
    );
    assert_eq!(mount.status, 201, "{}", mount.text());
    // A mount of an unknown blob opens an upload session instead (202).
    let unknown = sha256_digest(b"never uploaded");
    let miss = reg.request(
        "POST",
        &format!("/v2/t/two/blobs/uploads/?mount={unknown}&from=t/one"),
        &[],
        b"",
    );
    assert_eq!(miss.status, 202, "{}", miss.text());
    assert_eq!(reg.blob_upload_count(), 2);
    assert_eq!(reg.blob_mount_count(), 1);
    let mounts: Vec<_> = reg
        .blob_events()
        .into_iter()
        .filter(|e| e.kind == BlobEventKind::Mount)
        .map(|e| (e.repo, e.digest, e.status))
        .collect();
    assert_eq!(
        mounts,
        [
            ("t/two".to_owned(), a.clone(), 201),
            ("t/two".to_owned(), unknown, 202)
        ]
    );

    // A PUT with a wrong digest is logged (400) but is not an upload.
    let start = reg.request("POST", "/v2/t/one/blobs/uploads/", &[], b"");
    let location = http::origin_form(start.header("location").expect("Location"));
    let bad = reg.request("PUT", &format!("{location}&digest={b}"), &[], b"not blob b");
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert_eq!(reg.blob_upload_count(), 2);

    // The same blob again, in another repository: counted twice.
    reg.push_blob("t/three", b"blob a");
    assert_eq!(reg.blob_uploads_by_digest()[&a], 2);
    let caught = std::panic::catch_unwind(|| reg.assert_no_blob_uploaded_twice());
    assert!(caught.is_err(), "a blob uploaded twice went unnoticed");
}

/// Drop kills and reaps the registry and removes its directory, also when
/// the test panics.
#[test]
fn drop_leaves_nothing_behind() {
    let Some(reg) = Registry::start() else { return };
    let (pid, dir) = (reg.pid(), reg.dir().to_path_buf());
    assert!(process_exists(pid) && dir.is_dir());
    drop(reg);
    assert!(!process_exists(pid), "docker-registry {pid} still exists");
    assert!(!dir.exists(), "{} still exists", dir.display());

    // A panicking test: the registry is dropped while unwinding.
    let (tx, rx) = mpsc::channel();
    let outcome = thread::spawn(move || {
        let reg = Registry::start().expect("docker-registry was found a moment ago");
        tx.send((reg.pid(), reg.dir().to_path_buf()))
            .expect("send pid");
        panic!("deliberate panic with a running registry");
    })
    .join();
    assert!(outcome.is_err());
    let (pid, dir) = rx.recv().expect("the thread reported its registry");
    assert!(
        !process_exists(pid),
        "docker-registry {pid} survived a panic"
    );
    assert!(!dir.exists(), "{} survived a panic", dir.display());
}

// ---------------------------------------------------------------------------
// Through a proxy without faults.

/// A monolithic upload (POST, then PUT ?digest=) and a chunked PATCH upload
/// work through the proxy; the registry's Location points back at the proxy
/// (the Host header passes unchanged); the blob reads back whole, by range,
/// and by HEAD.
#[test]
fn uploads_and_reads_through_a_clean_proxy() {
    let Some(reg) = Registry::start() else { return };
    let proxy = FaultProxy::start(&reg.addr(), Faults::none());
    let p = proxy.addr();
    let data = pattern(16 * 1024 * 1024 + 3);
    let digest = sha256_digest(&data);

    let start = http::request(&p, "POST", "/v2/t/app/blobs/uploads/", &[], b"", TIMEOUT)
        .expect("POST via proxy");
    assert_eq!(start.status, 202, "{}", start.text());
    let location = start.header("location").expect("Location").to_owned();
    assert!(
        location.starts_with(&format!("{}/v2/t/app/blobs/uploads/", proxy.url())),
        "Location does not point at the proxy: {location}"
    );
    assert_eq!(start.header("connection"), Some("close"));
    let put = http::request(
        &p,
        "PUT",
        &format!("{}&digest={digest}", http::origin_form(&location)),
        &[("Content-Type", "application/octet-stream")],
        &data,
        TIMEOUT,
    )
    .expect("PUT via proxy");
    assert_eq!(put.status, 201, "{}", put.text());
    assert_eq!(put.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(reg.blob_upload_count(), 1);

    // Read back past the proxy, then through it: whole, HEAD, range.
    let blob_path = format!("/v2/t/app/blobs/{digest}");
    let direct = reg.get(&blob_path);
    assert!(
        direct.complete && direct.body == data,
        "direct read differs"
    );
    let via = get(&p, &blob_path, &[]).expect("GET via proxy");
    assert!(via.complete && via.body == data, "proxied read differs");
    let head = http::request(&p, "HEAD", &blob_path, &[], b"", TIMEOUT).expect("HEAD");
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(data.len().to_string().as_str())
    );
    assert!(head.body.is_empty() && head.complete);
    let range = get(&p, &blob_path, &[("Range", "bytes=1000-1999")]).expect("range GET");
    assert_eq!(range.status, 206, "{}", range.text());
    assert!(range.body == data[1000..2000], "wrong range");

    // A streamed upload: PATCH with a chunked body, then an empty PUT.
    let small = pattern(300_000);
    let small_digest = sha256_digest(&small);
    let start = http::request(&p, "POST", "/v2/t/app/blobs/uploads/", &[], b"", TIMEOUT)
        .expect("POST via proxy");
    let mut chunked = Vec::new();
    for piece in small.chunks(70_000) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let patch = http::request(
        &p,
        "PATCH",
        &http::origin_form(start.header("location").expect("Location")),
        &[
            ("Transfer-Encoding", "chunked"),
            ("Content-Type", "application/octet-stream"),
        ],
        &chunked,
        TIMEOUT,
    )
    .expect("PATCH via proxy");
    assert_eq!(patch.status, 202, "{}", patch.text());
    assert_eq!(
        patch.header("range"),
        Some(format!("0-{}", small.len() - 1).as_str())
    );
    let next = http::origin_form(patch.header("location").expect("Location"));
    let put = http::request(
        &p,
        "PUT",
        &format!("{next}&digest={small_digest}"),
        &[],
        b"",
        TIMEOUT,
    )
    .expect("PUT via proxy");
    assert_eq!(put.status, 201, "{}", put.text());
    assert_eq!(reg.blob_upload_count(), 2);
    reg.assert_no_blob_uploaded_twice();

    let stats = proxy.stats();
    assert_eq!(
        stats,
        Stats {
            requests: 8,
            ..Stats::default()
        }
    );
    assert!(proxy.seen().iter().all(|s| s.fault.is_none()));
}

/// A fake upstream for framing cases the registry does not produce: one
/// canned response per request, picked by path. Returns its address; the
/// listener thread ends with the test process.
fn fake_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake upstream");
    let addr = listener.local_addr().expect("addr").to_string();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // Rest of the head; these requests have no bodies.
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).map_or(true, |n| n == 0) || l == "\r\n" {
                    break;
                }
            }
            let path = line.split(' ').nth(1).unwrap_or("");
            let response: &[u8] = match path {
                "/chunked" => {
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                      5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
                }
                "/redirect" => {
                    b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n"
                }
                "/nocontent" => b"HTTP/1.1 204 No Content\r\n\r\n",
                "/close-delimited" => b"HTTP/1.1 200 OK\r\n\r\nuntil the end",
                // HEAD /sized: a length but no body.
                _ => b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
            };
            let _ = conn.write_all(response);
        }
    });
    addr
}

#[test]
fn proxy_passes_head_chunked_and_bodiless_responses() {
    let upstream = fake_upstream();
    let proxy = FaultProxy::start(&upstream, Faults::none());
    let p = proxy.addr();

    let chunked = get(&p, "/chunked", &[]).expect("chunked");
    assert_eq!(chunked.header("transfer-encoding"), Some("chunked"));
    assert!(chunked.complete);
    assert_eq!(chunked.body, b"hello, world");

    // Raw bytes: the chunked framing (extension, trailer) passes unchanged.
    let mut raw = TcpStream::connect(&p).expect("connect");
    raw.write_all(b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut raw, &mut bytes).expect("read");
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.ends_with("\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"),
        "{text}"
    );
    assert!(text.contains("Connection: close\r\n"), "{text}");

    let redirect = get(&p, "/redirect", &[]).expect("redirect");
    assert_eq!(redirect.status, 307);
    assert_eq!(redirect.header("location"), Some("/elsewhere"));

    let nocontent = http::request(&p, "DELETE", "/nocontent", &[], b"", TIMEOUT).expect("204");
    assert_eq!(nocontent.status, 204);
    assert!(nocontent.complete && nocontent.body.is_empty());

    let head = http::request(&p, "HEAD", "/sized", &[], b"", TIMEOUT).expect("HEAD");
    assert_eq!(head.header("content-length"), Some("1000"));
    assert!(head.complete && head.body.is_empty());

    let until_close = get(&p, "/close-delimited", &[]).expect("close-delimited");
    assert_eq!(until_close.body, b"until the end");
    assert_eq!(proxy.stats().requests, 6);
}

// ---------------------------------------------------------------------------
// Faults.

/// 500 and 429 are answered by the proxy without reaching the registry, up
/// to `max_faults`; then requests pass.
#[test]
fn proxy_injects_500_and_429() {
    let Some(reg) = Registry::start() else { return };

    let proxy = FaultProxy::start(
        &reg.addr(),
        Faults {
            status_500: 1.0,
            max_faults: Some(2),
            ..Faults::none()
        },
    );
    let before = reg.access_log().len();
    for _ in 0..2 {
        let r = get(&proxy.addr(), "/v2/", &[]).expect("GET via proxy");
        assert_eq!(r.status, 500, "{}", r.text());
        assert!(r.text().contains("UNKNOWN"), "{}", r.text());
    }
    assert_eq!(
        reg.access_log().len(),
        before,
        "a faulted request was forwarded"
    );
    assert_eq!(get(&proxy.addr(), "/v2/", &[]).expect("GET").status, 200);
    assert_eq!(
        proxy.stats(),
        Stats {
            requests: 3,
            status_500: 2,
            ..Stats::default()
        }
    );

    // 429 on uploads only: the blob's PUT fails once, carrying Retry-After;
    // the body sent with it is read and dropped, and the answer still arrives.
    let proxy = FaultProxy::start(
        &reg.addr(),
        Faults {
            status_429: 1.0,
            method: Some("PUT".into()),
            max_faults: Some(1),
            ..Faults::none()
        },
    );
    let data = pattern(5 * 1024 * 1024);
    let err = upload_blob(&proxy.addr(), "t/app", &data, None).expect_err("429 expected");
    assert!(err.contains(": 429 "), "{err}");
    let r = get(&proxy.addr(), "/v2/", &[]).expect("GET");
    assert_eq!(r.status, 200, "GET is not PUT: no fault");
    upload_blob(&proxy.addr(), "t/app", &data, None).expect("the retry passes");
    assert_eq!(proxy.stats().status_429, 1);
    assert_eq!(reg.blob_upload_count(), 1);

    let proxy = FaultProxy::start(
        &reg.addr(),
        Faults {
            status_429: 1.0,
            ..Faults::none()
        },
    );
    let r = get(&proxy.addr(), "/v2/", &[]).expect("GET");
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("connection"), Some("close"));
}

/// A mid-body drop gives a short body (the connection closes before
/// Content-Length bytes); a body-less response is dropped before its head.
#[test]
fn proxy_drops_responses_mid_body() {
    let Some(reg) = Registry::start() else { return };
    let data = pattern(1024 * 1024);
    let digest = reg.push_blob("t/app", &data);
    let blob_path = format!("/v2/t/app/blobs/{digest}");
    let proxy = FaultProxy::start(
        &reg.addr(),
        Faults {
            drop_response_after: 1.0,
            path_contains: Some("/blobs/".into()),
            max_faults: Some(3),
            ..Faults::none()
        },
    );
    for _ in 0..2 {
        let r = get(&proxy.addr(), &blob_path, &[]).expect("response head arrives");
        assert_eq!(r.status, 200);
        assert!(!r.complete, "the body was not cut");
        assert!(r.body.len() < data.len());
        assert!(r.body == data[..r.body.len()], "the prefix differs");
    }
    // /v2/ does not match the path filter.
    assert_eq!(get(&proxy.addr(), "/v2/", &[]).expect("GET").status, 200);
    // HEAD has no body: the connection drops before the head.
    let err = http::request(&proxy.addr(), "HEAD", &blob_path, &[], b"", TIMEOUT)
        .expect_err("no response");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
    // max_faults reached: whole again.
    let r = get(&proxy.addr(), &blob_path, &[]).expect("GET");
    assert!(r.complete && r.body == data);
    assert_eq!(proxy.stats().drop_response, 3);
    assert_eq!(proxy.stats().requests, 5);
}

/// A dropped upload: part of the body reaches the registry, no answer
/// comes back, nothing is stored; a fresh upload then succeeds.
#[test]
fn proxy_drops_requests_mid_upload() {
    let Some(reg) = Registry::start() else { return };
    let proxy = FaultProxy::start(
        &reg.addr(),
        Faults {
            drop_request: 1.0,
            method: Some("PUT".into()),
            max_faults: Some(1),
            ..Faults::none()
        },
    );
    let data = pattern(8 * 1024 * 1024);
    let err = upload_blob(&proxy.addr(), "t/app", &data, None).expect_err("dropped");
    assert!(err.starts_with("PUT "), "{err}");
    assert_eq!(reg.blob_upload_count(), 0);
    let digest = upload_blob(&proxy.addr(), "t/app", &data, None).expect("retry");
    assert_eq!(reg.blob_upload_count(), 1);
    assert!(reg.get(&format!("/v2/t/app/blobs/{digest}")).body == data);
    let seen = proxy.seen();
    let faulted: Vec<_> = seen.iter().filter(|s| s.fault.is_some()).collect();
    assert_eq!(faulted.len(), 1);
    assert_eq!(faulted[0].method, "PUT");
    assert_eq!(faulted[0].fault, Some(Fault::DropRequest));
}

/// A stall delays the body by `stall_for`; a client with a shorter timeout
/// times out; Drop does not wait for a long stall to end.
#[test]
fn proxy_stalls_responses() {
    let Some(reg) = Registry::start() else { return };
    let data = pattern(256 * 1024);
    let digest = reg.push_blob("t/app", &data);
    let blob_path = format!("/v2/t/app/blobs/{digest}");

    let proxy = FaultProxy::start(
        &reg.addr(),
        Faults {
            stall: 1.0,
            stall_for: Duration::from_millis(1500),
            path_contains: Some("/blobs/".into()),
            ..Faults::none()
        },
    );
    let t = Instant::now();
    let r = get(&proxy.addr(), &blob_path, &[]).expect("GET");
    let took = t.elapsed();
    assert!(r.complete && r.body == data);
    assert!(took >= Duration::from_millis(1500), "no stall: {took:?}");
    let err = http::request(
        &proxy.addr(),
        "GET",
        &blob_path,
        &[],
        b"",
        Duration::from_millis(300),
    )
    .expect_err("a 300 ms timeout must expire in a 1.5 s stall");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err}"
    );
    assert_eq!(proxy.stats().stall, 2);

    // A 60 s stall in progress: dropping the proxy ends it at once.
    let proxy = FaultProxy::start(
        &reg.addr(),
        Faults {
            stall: 1.0,
            stall_for: Duration::from_secs(60),
            ..Faults::none()
        },
    );
    let addr = proxy.addr();
    let client = thread::spawn(move || get(&addr, &blob_path, &[]));
    while proxy.stats().stall == 0 {
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    drop(proxy);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "Drop waited for the stall"
    );
    let r = client.join().expect("client thread");
    if let Ok(r) = r {
        assert!(
            !r.complete,
            "the stalled response completed: {} with {} bytes",
            r.status,
            r.body.len()
        );
    }
}

/// The same seed gives the same faults; another seed, others.
#[test]
fn fault_draws_are_reproducible() {
    let upstream = fake_upstream();
    let run = |seed: u64| {
        let proxy = FaultProxy::start(
            &upstream,
            Faults {
                seed,
                status_500: 0.3,
                status_429: 0.3,
                ..Faults::none()
            },
        );
        (0..40)
            .map(|_| get(&proxy.addr(), "/nocontent", &[]).expect("GET").status)
            .collect::<Vec<u16>>()
    };
    let a = run(1);
    assert_eq!(a, run(1));
    assert_ne!(a, run(2));
    for status in [204, 429, 500] {
        assert!(a.contains(&status), "{status} never drawn in {a:?}");
    }
}
