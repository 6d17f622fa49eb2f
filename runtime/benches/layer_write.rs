//! Layer write throughput per compression, on a ~50 MB mixed tree (source
//! text plus incompressible blobs, like a typical build context), and the
//! memory a 1 GiB file costs.
//!
//! Before the criterion runs it prints a summary: for each compression,
//! the best of a few runs in MB/s of tree content and the blob size; then
//! the peak-RSS growth while writing a sparse 1 GiB file. These figures
//! choose the default levels in `layer::compress`.
//!
//! `cargo bench -p berth-runtime --bench layer_write` (add
//! `-- --summary-only` to skip the criterion part). Under `cargo test` it
//! only smoke-tests each configuration on a small tree.

use std::fs;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_runtime::layer::compress::{Compression, CompressionSpec};
use berth_runtime::layer::writer::{LayerOptions, write_layer};
use berth_runtime::store::Store;
use criterion::{Criterion, Throughput};
use tempfile::TempDir;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const WORDS: &[&str] = &[
    "fn", "let", "mut", "self", "return", "if", "else", "match", "impl", "struct", "pub", "use",
    "for", "in", "while", "loop", "break", "continue", "const", "static", "Some", "None", "Ok",
    "Err", "Result", "Option", "String", "Vec", "u64", "usize", "bool", "true", "false", "=>",
    "->", "::", "{", "}", "(", ")", ";", ",", ".", "&", "=", "==", "!=", "+", "-", "*", "config",
    "layer", "digest", "path", "error", "value", "index", "name", "buffer", "request", "response",
    "handler", "context", "state", "item", "count", "len", "data", "map", "iter", "collect",
];

/// Pseudo source text: words, indentation, line breaks (compresses ~4x).
fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    while out.len() < len {
        let r = rng.next();
        if r.is_multiple_of(9) {
            out.push(b'\n');
            out.extend(std::iter::repeat_n(b' ', (r >> 8) as usize % 4 * 4));
        } else {
            out.extend_from_slice(WORDS[(r >> 16) as usize % WORDS.len()].as_bytes());
            if r.is_multiple_of(5) {
                out.extend_from_slice(format!("{}", (r >> 32) % 1000).as_bytes());
            }
            out.push(b' ');
        }
    }
    out.truncate(len);
    out
}

fn noise(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// ~25 MB of text in 1,600 files over 40 directories, and 25 MB of
/// incompressible data in 5 files. Returns the content size in bytes.
fn make_tree(root: &Path) -> u64 {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut total = 0u64;
    for d in 0..40 {
        let dir = root.join(format!("src/mod{d}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..40 {
            let len = 2_000 + (rng.next() % 28_000) as usize;
            fs::write(dir.join(format!("file{f}.rs")), text(&mut rng, len)).unwrap();
            total += len as u64;
        }
    }
    fs::create_dir_all(root.join("assets")).unwrap();
    for i in 0..5 {
        let len = 5_000_000;
        fs::write(
            root.join(format!("assets/blob{i}.bin")),
            noise(&mut rng, len),
        )
        .unwrap();
        total += len as u64;
    }
    total
}

const CONFIGS: &[(Compression, Option<i32>)] = &[
    (Compression::Gzip, Some(1)),
    (Compression::Gzip, Some(2)),
    (Compression::Gzip, Some(3)),
    (Compression::Gzip, Some(6)),
    (Compression::Zstd, Some(1)),
    (Compression::Zstd, Some(3)),
    (Compression::Uncompressed, None),
];

fn opts(kind: Compression, level: Option<i32>) -> LayerOptions {
    LayerOptions {
        compression: CompressionSpec::new(kind, level).unwrap(),
        source_date_epoch: Some(0),
        overlay_whiteouts: false,
    }
}

fn label(kind: Compression, level: Option<i32>) -> String {
    match level {
        Some(l) => format!("{kind}-{l}"),
        None => kind.to_string(),
    }
}

fn vm_hwm_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU time of the whole process (all threads) so far.
fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Resets VmHWM to the current RSS (Linux >= 4.0), so each configuration's
/// peak is measured on its own.
fn reset_peak_rss() {
    let _ = fs::write("/proc/self/clear_refs", "5");
}

/// Measures one configuration in this (fresh) process: best of `RUNS`
/// wall times, blob size, and how far the first write raised peak RSS.
fn measure_one(store: &Store, tree: &Path, bytes: u64, index: usize) {
    const RUNS: usize = 5;
    let (kind, level) = CONFIGS[index];
    let options = opts(kind, level);
    reset_peak_rss();
    let base = vm_hwm_kib();
    let mut best = Duration::MAX;
    let mut size = 0;
    let mut growth = 0;
    let cpu_start = cpu_seconds();
    for run in 0..RUNS {
        let start = Instant::now();
        let blob = write_layer(store, tree, &options, &|_| {}).unwrap();
        best = best.min(start.elapsed());
        size = blob.descriptor.size;
        if run == 0 {
            growth = vm_hwm_kib().saturating_sub(base);
        }
    }
    let cpu = (cpu_seconds() - cpu_start) / RUNS as f64;
    println!(
        "{:<14} {:>8.0} {:>12} {:>7.3} {:>9} KiB {:>9.0}",
        label(kind, level),
        bytes as f64 / 1e6 / best.as_secs_f64(),
        size,
        size as f64 / bytes as f64,
        growth,
        bytes as f64 / 1e6 / cpu
    );
}

/// A sparse 1 GiB file: peak RSS growth over a warm-up write of the tree.
fn measure_big_file(store: &Store, tree: &Path, index: usize) {
    let (kind, level) = CONFIGS[index];
    let options = opts(kind, level);
    let big = TempDir::new().unwrap();
    fs::File::create(big.path().join("big"))
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    write_layer(store, tree, &options, &|_| {}).unwrap();
    reset_peak_rss();
    let before = vm_hwm_kib();
    let start = Instant::now();
    write_layer(store, big.path(), &options, &|_| {}).unwrap();
    println!(
        "1 GiB sparse file, {}: peak RSS +{} KiB over a warm write (process peak {} KiB), {:.2} s",
        label(kind, level),
        vm_hwm_kib().saturating_sub(before),
        vm_hwm_kib(),
        start.elapsed().as_secs_f64()
    );
}

/// Runs every measurement in a child process of its own, so that one
/// configuration's allocations do not hide or inflate another's.
fn summary(bytes: u64) {
    println!(
        "layer_write summary: {:.1} MB tree, {} cores",
        bytes as f64 / 1e6,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<14} {:>8} {:>12} {:>7} {:>13} {:>9}",
        "compression", "MB/s", "blob bytes", "ratio", "peak RSS +", "MB/cpu-s"
    );
    let exe = std::env::current_exe().unwrap();
    let big_file_configs = CONFIGS
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            matches!(
                c,
                (Compression::Gzip, Some(1)) | (Compression::Zstd, Some(3))
            )
        })
        .map(|(i, _)| ("--big-file", i));
    for (flag, index) in (0..CONFIGS.len())
        .map(|i| ("--one", i))
        .chain(big_file_configs)
    {
        let out = std::process::Command::new(&exe)
            .args([flag, &index.to_string()])
            .output()
            .unwrap();
        print!("{}", String::from_utf8_lossy(&out.stdout));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let arg_after = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let store_dir = TempDir::new().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let tree = TempDir::new().unwrap();

    // `cargo test` runs bench targets without `--bench`: a smoke test of
    // every configuration on a small tree is enough there.
    let measuring = has("--bench") || has("--one") || has("--big-file");
    if !measuring {
        let mut rng = Rng(1);
        fs::write(tree.path().join("text"), text(&mut rng, 300_000)).unwrap();
        fs::write(tree.path().join("noise"), noise(&mut rng, 300_000)).unwrap();
        for &(kind, level) in CONFIGS {
            write_layer(&store, tree.path(), &opts(kind, level), &|_| {}).unwrap();
        }
        return;
    }

    let bytes = make_tree(tree.path());
    if let Some(index) = arg_after("--one") {
        return measure_one(&store, tree.path(), bytes, index);
    }
    if let Some(index) = arg_after("--big-file") {
        return measure_big_file(&store, tree.path(), index);
    }
    summary(bytes);
    if has("--summary-only") {
        return;
    }

    let mut c = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(15))
        .configure_from_args();
    let mut group = c.benchmark_group("layer_write");
    group.throughput(Throughput::Bytes(bytes));
    for &(kind, level) in CONFIGS {
        let options = opts(kind, level);
        group.bench_function(label(kind, level), |b| {
            b.iter(|| black_box(write_layer(&store, tree.path(), &options, &|_| {}).unwrap()))
        });
    }
    group.finish();
    c.final_summary();
}
