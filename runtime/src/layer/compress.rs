//! Layer compression: which encodings a layer blob may use, their levels and
//! media types, and the streaming encoder that turns a tar stream into blob
//! bytes.
//!
//! Owns the guarantee that compressed output is a pure function of the input
//! bytes and the [`CompressionSpec`] (for a given build of berth): the gzip
//! header carries no time stamp, file name or host OS, zstd runs with fixed
//! parameters, and both cut the input into fixed-size pieces that worker
//! threads compress independently, so neither the number of cores nor the
//! sizes the input arrives in change the bytes. The same layer always gets
//! the same blob digest.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Write};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};
use flate2::{Compress, Crc, FlushCompress, Status};

use super::writer::LayerError;
use crate::store::media;

/// The encodings berth writes layers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
    Uncompressed,
}

/// Names accepted by [`Compression::parse`], in the order error messages list them.
const NAMES: &str = "gzip, zstd, uncompressed";

impl Compression {
    /// Parses the user-facing name: `gzip`, `zstd` or `uncompressed`.
    pub fn parse(s: &str) -> Result<Compression, LayerError> {
        match s {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            "uncompressed" => Ok(Compression::Uncompressed),
            _ => Err(LayerError::UnknownCompression {
                value: s.to_owned(),
                valid: NAMES,
            }),
        }
    }

    /// The OCI media type of a layer blob in this encoding.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => media::OCI_LAYER_TAR_GZIP,
            Compression::Zstd => media::OCI_LAYER_TAR_ZSTD,
            Compression::Uncompressed => media::OCI_LAYER_TAR,
        }
    }

    /// The name [`parse`](Compression::parse) accepts.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Uncompressed => "uncompressed",
        }
    }

    /// The levels this encoding accepts, or `None` if it takes no level.
    pub fn level_range(self) -> Option<(i32, i32)> {
        match self {
            Compression::Gzip => Some((0, 9)),
            Compression::Zstd => Some((1, 22)),
            Compression::Uncompressed => None,
        }
    }

    /// The level used when none is given (0 for `uncompressed`, which has none).
    pub fn default_level(self) -> i32 {
        match self {
            Compression::Gzip => DEFAULT_GZIP_LEVEL,
            Compression::Zstd => DEFAULT_ZSTD_LEVEL,
            Compression::Uncompressed => 0,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Default gzip level.
///
/// Compression is the bottleneck of a cold build: walking, framing and
/// hashing the tar runs at over 600 MB/s, gzip at a fraction of that. So the
/// default is the fastest level. Measured on the 2-core build machine over
/// a 50.5 MB tree of half source text, half incompressible blobs (`cargo
/// bench -p berth-runtime --bench layer_write -- --summary-only`, best of
/// 5, both cores compressing):
///
/// | level | MB/s | blob MB | MB per CPU-second |
/// |---|---|---|---|
/// | 1 | 215 | 39.3 | 121 |
/// | 2 | 146 | 34.5 | 79 |
/// | 3 | 135 | 34.2 | 73 |
/// | 6 | 79 | 33.5 | 41 |
///
/// Level 1 is 1.6x faster than level 3 and 2.7x faster than zlib's default
/// 6. It pays in size on text (zlib-rs codes it with the fixed Huffman
/// table): the blob is 15% larger than at level 3 here, and about 50%
/// larger on the text alone; incompressible content costs the same at any
/// level. Choose level 3 where registry bytes matter more than build time.
pub const DEFAULT_GZIP_LEVEL: i32 = 1;

/// Default zstd level: zstd's own default. On the same tree: 356 MB/s and
/// 33.6 MB, against 409 MB/s and 34.6 MB at level 1; both beat every gzip
/// level on speed and size.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// Compression threads per layer: one per core, up to 8. Both encoders cut
/// their input into fixed-size pieces compressed independently, so the
/// output is the same for any count (`tests::output_does_not_depend_on_workers`)
/// and the count can follow the machine. The tar producer needs little CPU
/// (it runs at over 500 MB/s uncompressed), so every core can compress.
fn workers() -> u32 {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8) as u32)
}

/// zstd's job size, pinned. zstd's own choice is 4 windows (8 MiB at level
/// 3) and it keeps a few jobs' input and output buffered: 73 MiB of peak
/// RSS at level 3 on the benchmark tree, against 16 MiB with 1 MiB jobs, at
/// the same speed and a size within 0.01%. Pinned, it also cannot move
/// with zstd's heuristics, which would change blob digests.
const ZSTD_JOB_SIZE: u32 = 1 << 20;

/// An encoding and its level, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionSpec {
    pub kind: Compression,
    pub level: Option<i32>,
}

impl CompressionSpec {
    /// Checks `level` against the encoding: gzip takes 0..=9, zstd 1..=22,
    /// uncompressed takes none.
    pub fn new(kind: Compression, level: Option<i32>) -> Result<CompressionSpec, LayerError> {
        if let Some(level) = level {
            match kind.level_range() {
                None => return Err(LayerError::LevelNotAllowed { kind, level }),
                Some((min, max)) if !(min..=max).contains(&level) => {
                    return Err(LayerError::InvalidLevel {
                        kind,
                        level,
                        min,
                        max,
                    });
                }
                Some(_) => {}
            }
        }
        Ok(CompressionSpec { kind, level })
    }

    /// The explicit level, or the encoding's default.
    pub fn level(&self) -> i32 {
        self.level.unwrap_or(self.kind.default_level())
    }
}

impl Default for CompressionSpec {
    fn default() -> CompressionSpec {
        CompressionSpec {
            kind: Compression::Gzip,
            level: None,
        }
    }
}

/// Streaming encoder: write tar bytes in, then [`finish`](Encoder::finish)
/// to flush the trailer and get the inner writer back.
///
/// Not finishing (dropping) leaves a truncated stream in the inner writer;
/// callers that drop on error must discard what was written.
pub struct Encoder<W: Write> {
    inner: Inner<W>,
}

enum Inner<W: Write> {
    Gzip(ParallelGzip<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    Plain(W),
}

impl<W: Write> Encoder<W> {
    /// An encoder for `spec` writing into `out`.
    pub fn new(out: W, spec: &CompressionSpec) -> io::Result<Encoder<W>> {
        Self::with_workers(out, spec, workers())
    }

    /// [`new`](Encoder::new) with an explicit number of compression threads.
    fn with_workers(out: W, spec: &CompressionSpec, workers: u32) -> io::Result<Encoder<W>> {
        // The fields are public: check again what `CompressionSpec::new` checks.
        let spec = CompressionSpec::new(spec.kind, spec.level)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let inner = match spec.kind {
            Compression::Gzip => {
                // Cannot fall back: the level was just checked to be 0..=9.
                let level = u32::try_from(spec.level()).unwrap_or(DEFAULT_GZIP_LEVEL as u32);
                Inner::Gzip(ParallelGzip::new(out, level, workers)?)
            }
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(out, spec.level())?;
                // Set explicitly so a change of the library's defaults
                // cannot silently change blob digests.
                enc.include_checksum(true)?;
                enc.include_contentsize(false)?;
                // Never 0 workers: single-threaded zstd writes other bytes.
                enc.multithread(workers.max(1))?;
                enc.set_parameter(zstd::zstd_safe::CParameter::JobSize(ZSTD_JOB_SIZE))?;
                Inner::Zstd(enc)
            }
            Compression::Uncompressed => Inner::Plain(out),
        };
        Ok(Encoder { inner })
    }

    /// Writes the stream's trailer and returns the inner writer, flushed.
    pub fn finish(self) -> io::Result<W> {
        let mut out = match self.inner {
            Inner::Gzip(e) => e.finish()?,
            Inner::Zstd(e) => e.finish()?,
            Inner::Plain(w) => w,
        };
        out.flush()?;
        Ok(out)
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Gzip(e) => e.write_all(buf).map(|()| buf.len()),
            Inner::Zstd(e) => e.write(buf),
            Inner::Plain(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            Inner::Gzip(e) => e.write_all(buf),
            Inner::Zstd(e) => e.write_all(buf),
            Inner::Plain(w) => w.write_all(buf),
        }
    }

    /// Only flushes the inner writer: a compressor flush would end a block
    /// early and make the output depend on when flushes happened.
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Gzip(e) => e.out.flush(),
            Inner::Zstd(e) => e.get_mut().flush(),
            Inner::Plain(w) => w.flush(),
        }
    }
}

/// Input block size of [`ParallelGzip`]: each block costs 5 bytes of
/// flush marker and restarts match finding with only a 32 KiB history, so
/// blocks should be large; 256 KiB loses < 0.1% against one serial stream.
const GZIP_BLOCK: usize = 256 * 1024;
/// Deflate's window: how much of the previous block primes the next.
const GZIP_DICT: usize = 32 * 1024;

/// A gzip encoder that deflates fixed-size blocks on worker threads, in
/// the manner of pigz, and writes them out in order.
///
/// Each block is deflated on its own, primed with the 32 KiB of input
/// before it as dictionary, and (except the last) ends with a sync flush so
/// it stops on a byte boundary; the blocks concatenated form one ordinary
/// deflate stream inside one gzip member. A block's bytes depend only on
/// its input, its dictionary and the level, so the output is the same for
/// any worker count and any sizes the input is written in.
///
/// The header is the fixed one GzBuilder writes: no mtime, no name, OS 255.
pub(crate) struct ParallelGzip<W: Write> {
    pub(crate) out: W,
    block: Vec<u8>,
    /// The last 32 KiB of the previous block.
    dict: Vec<u8>,
    crc: Crc,
    /// Input length modulo 2^32, as the gzip trailer wants it.
    isize: u32,
    jobs: Option<Sender<GzipJob>>,
    /// Results of submitted blocks, oldest first.
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    max_pending: usize,
    workers: Vec<JoinHandle<()>>,
}

struct GzipJob {
    input: Vec<u8>,
    dict: Vec<u8>,
    last: bool,
    reply: Sender<io::Result<Vec<u8>>>,
}

impl<W: Write> ParallelGzip<W> {
    pub(crate) fn new(mut out: W, level: u32, workers: u32) -> io::Result<ParallelGzip<W>> {
        let workers = workers.clamp(1, 16) as usize;
        let (jobs, queue) = bounded::<GzipJob>(workers);
        let mut handles = Vec::with_capacity(workers);
        for i in 0..workers {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("berth-gzip-{i}"))
                .spawn(move || gzip_worker(queue, level));
            match spawned {
                Ok(handle) => handles.push(handle),
                // Already running workers end when `jobs` is dropped.
                Err(e) => return Err(e),
            }
        }
        let xfl = match level {
            9 => 2,
            0 | 1 => 4,
            _ => 0,
        };
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255])?;
        Ok(ParallelGzip {
            out,
            block: Vec::with_capacity(GZIP_BLOCK),
            dict: Vec::new(),
            crc: Crc::new(),
            isize: 0,
            jobs: Some(jobs),
            pending: VecDeque::new(),
            // Enough to keep every worker busy while finished blocks wait
            // to be written.
            max_pending: 2 * workers,
            workers: handles,
        })
    }

    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        self.crc.update(buf);
        // Truncation intended: ISIZE is the length modulo 2^32.
        self.isize = self.isize.wrapping_add(buf.len() as u32);
        while !buf.is_empty() {
            let n = (GZIP_BLOCK - self.block.len()).min(buf.len());
            self.block.extend_from_slice(&buf[..n]);
            buf = &buf[n..];
            if self.block.len() == GZIP_BLOCK {
                self.submit(false)?;
            }
        }
        Ok(())
    }

    /// Hands the current block to the workers, first writing out finished
    /// blocks if too many are pending.
    fn submit(&mut self, last: bool) -> io::Result<()> {
        while self.pending.len() >= self.max_pending {
            self.write_oldest()?;
        }
        let input = std::mem::replace(&mut self.block, Vec::with_capacity(GZIP_BLOCK));
        let dict = std::mem::take(&mut self.dict);
        self.dict = input[input.len().saturating_sub(GZIP_DICT)..].to_vec();
        let (reply, result) = bounded(1);
        let job = GzipJob {
            input,
            dict,
            last,
            reply,
        };
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(job));
        if !matches!(sent, Some(Ok(()))) {
            return Err(worker_gone());
        }
        self.pending.push_back(result);
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(result) = self.pending.pop_front() {
            let deflated = result.recv().map_err(|_| worker_gone())??;
            self.out.write_all(&deflated)?;
        }
        Ok(())
    }

    /// Deflates what is left as the final block, writes every block and the
    /// trailer, and returns the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        // Even an empty final block is needed: it carries the end marker.
        self.submit(true)?;
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        trailer[4..].copy_from_slice(&self.isize.to_le_bytes());
        self.out.write_all(&trailer)?;
        // Workers end when their queue closes. Dropping the encoder instead
        // (on an error) closes it too; they then finish at most the block
        // they hold and exit on their own.
        self.jobs = None;
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
        Ok(self.out)
    }
}

fn worker_gone() -> io::Error {
    io::Error::other("a gzip compression thread stopped unexpectedly")
}

fn gzip_worker(queue: Receiver<GzipJob>, level: u32) {
    for job in queue {
        // A fresh compressor per block: zlib-rs' `reset` leaves state
        // behind that changes the next block's output, which would make
        // the bytes depend on which worker got which block.
        let mut deflate = Compress::new(flate2::Compression::new(level), false);
        let result = deflate_block(&mut deflate, &job);
        // The encoder may have been dropped meanwhile: nobody to tell.
        let _ = job.reply.send(result);
    }
}

/// Raw-deflates one block, primed with its dictionary; a sync flush ends
/// it on a byte boundary, or the final flush ends the stream.
fn deflate_block(deflate: &mut Compress, job: &GzipJob) -> io::Result<Vec<u8>> {
    if !job.dict.is_empty() {
        deflate
            .set_dictionary(&job.dict)
            .map_err(io::Error::other)?;
    }
    let flush = if job.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    // Room for incompressible input in one pass, even coded with the fixed
    // Huffman table (9 bits a byte) that level 1 uses.
    let mut out = Vec::with_capacity(job.input.len() + job.input.len() / 8 + 1024);
    let start = deflate.total_in();
    loop {
        let consumed = usize::try_from(deflate.total_in() - start).unwrap_or(job.input.len());
        let status = deflate
            .compress_vec(&job.input[consumed.min(job.input.len())..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = deflate.total_in() - start == job.input.len() as u64;
        // A flush is complete once it leaves output space unused.
        let done = if job.last {
            status == Status::StreamEnd
        } else {
            all_in && out.len() < out.capacity()
        };
        if done {
            return Ok(out);
        }
        out.reserve(64 * 1024);
    }
}
impl<W: Write> fmt::Debug for Encoder<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.inner {
            Inner::Gzip(_) => "gzip",
            Inner::Zstd(_) => "zstd",
            Inner::Plain(_) => "uncompressed",
        };
        f.debug_struct("Encoder").field("kind", &kind).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// Compressible but not trivial input: words and random bytes mixed.
    fn sample(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let words: [&[u8]; 6] = [b"layer ", b"tar ", b"berth ", b"\n", b"digest ", b"0123"];
        let mut out = Vec::with_capacity(len + 16);
        while out.len() < len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if state.is_multiple_of(5) {
                out.extend_from_slice(&state.to_le_bytes());
            } else {
                out.extend_from_slice(words[(state % 6) as usize]);
            }
        }
        out.truncate(len);
        out
    }

    fn compress(spec: &CompressionSpec, workers: u32, data: &[u8], write_size: usize) -> Vec<u8> {
        let mut enc = Encoder::with_workers(Vec::new(), spec, workers).unwrap();
        for chunk in data.chunks(write_size) {
            enc.write_all(chunk).unwrap();
        }
        enc.finish().unwrap()
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn output_does_not_depend_on_workers() {
        // zstd: several 1 MiB jobs. gzip: several 256 KiB blocks, and a
        // last one that is partial.
        let data = sample(5 << 20 | 12345);
        for (kind, level) in [
            (Compression::Zstd, 1),
            (Compression::Zstd, 3),
            (Compression::Gzip, 1),
            (Compression::Gzip, 6),
        ] {
            let spec = CompressionSpec::new(kind, Some(level)).unwrap();
            let reference = compress(&spec, 1, &data, 256 * 1024);
            for (workers, write_size) in [(2, 256 * 1024), (3, 4096), (4, 1 << 20), (2, 777)] {
                let got = compress(&spec, workers, &data, write_size);
                assert!(
                    got == reference,
                    "{kind} {level}, {workers} workers, writes of {write_size}: output differs"
                );
            }
        }
    }

    #[test]
    fn parallel_gzip_is_one_ordinary_member() {
        for len in [
            0,
            1,
            GZIP_BLOCK - 1,
            GZIP_BLOCK,
            GZIP_BLOCK + 1,
            3 * GZIP_BLOCK + 17,
        ] {
            let data = sample(len);
            for level in [0, 1, 5, 9] {
                let spec = CompressionSpec::new(Compression::Gzip, Some(level)).unwrap();
                let gz = compress(&spec, 2, &data, 100_000);
                assert!(gunzip(&gz) == data, "{len} bytes at level {level}");
                // Header: deflate, no flags, no mtime, OS "unknown".
                assert_eq!(&gz[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
                assert_eq!(gz[9], 255);
                // Trailer: CRC-32 and length.
                let mut crc = Crc::new();
                crc.update(&data);
                assert_eq!(gz[gz.len() - 8..gz.len() - 4], crc.sum().to_le_bytes());
                assert_eq!(gz[gz.len() - 4..], (len as u32).to_le_bytes());
            }
        }
        // Blocks cost next to nothing against one serial stream.
        let data = sample(4 << 20);
        let spec = CompressionSpec::new(Compression::Gzip, Some(6)).unwrap();
        let parallel = compress(&spec, 2, &data, 1 << 20).len();
        let mut serial = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        serial.write_all(&data).unwrap();
        let serial = serial.finish().unwrap().len();
        assert!(parallel < serial + serial / 200, "{parallel} vs {serial}");
    }

    #[test]
    fn zstd_frame_has_a_checksum_and_decodes() {
        let data = sample(3 << 20);
        let spec = CompressionSpec::new(Compression::Zstd, None).unwrap();
        let z = compress(&spec, 2, &data, 65536);
        assert_eq!(zstd::decode_all(&z[..]).unwrap(), data);
        // Frame header descriptor: checksum flag (bit 2) set.
        assert_eq!(&z[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert_ne!(z[4] & 0b100, 0);
    }

    #[test]
    fn levels_are_checked() {
        assert!(CompressionSpec::new(Compression::Gzip, Some(0)).is_ok());
        assert!(CompressionSpec::new(Compression::Gzip, Some(9)).is_ok());
        assert!(CompressionSpec::new(Compression::Gzip, Some(10)).is_err());
        assert!(CompressionSpec::new(Compression::Zstd, Some(0)).is_err());
        assert!(CompressionSpec::new(Compression::Zstd, Some(22)).is_ok());
        assert!(CompressionSpec::new(Compression::Uncompressed, Some(1)).is_err());
        assert_eq!(CompressionSpec::default().level(), DEFAULT_GZIP_LEVEL);
        // A spec that bypassed `new` is refused by the encoder too.
        let bad = CompressionSpec {
            kind: Compression::Zstd,
            level: Some(99),
        };
        assert!(Encoder::new(Vec::new(), &bad).is_err());
    }
}
