//! Recognising and decoding compressed streams.
//!
//! Owns the magic-byte sniffing of gzip, zstd, bzip2 and xz streams, the
//! streaming decoders for each, and `ADD`'s rule for "is this file a tar
//! archive" ([`is_tar_archive`]). Layer blobs are sniffed rather than trusted
//! by media type: registries and older tools mislabel layers often enough
//! (Docker media types, uncompressed layers labelled gzip) that the bytes are
//! the only reliable witness.
//!
//! Memory is bounded: every decoder streams, and sniffing reads at most six
//! bytes ahead, which are handed back in front of the rest of the stream.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A compression format recognised by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Gzip,
    Zstd,
    Bzip2,
    Xz,
    /// Not one of the above: passed through as it is.
    Plain,
}

impl Format {
    /// The format's usual name, as in `tar+gzip`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Gzip => "gzip",
            Format::Zstd => "zstd",
            Format::Bzip2 => "bzip2",
            Format::Xz => "xz",
            Format::Plain => "uncompressed",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const BZIP2_MAGIC: &[u8] = b"BZh";
const XZ_MAGIC: &[u8] = &[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
/// The longest magic above: how much [`decompress`] reads ahead.
const SNIFF_LEN: usize = 6;

/// Recognises a stream's compression from its first bytes. A prefix too
/// short to hold a magic number is [`Format::Plain`].
pub fn detect(prefix: &[u8]) -> Format {
    if prefix.starts_with(GZIP_MAGIC) {
        Format::Gzip
    } else if prefix.starts_with(ZSTD_MAGIC) {
        Format::Zstd
    } else if prefix.starts_with(BZIP2_MAGIC) {
        Format::Bzip2
    } else if prefix.starts_with(XZ_MAGIC) {
        Format::Xz
    } else {
        Format::Plain
    }
}

/// Sniffs `reader`'s compression and returns a reader of the decoded bytes.
///
/// The sniffed bytes are not lost: they are replayed in front of the rest of
/// the stream, so a [`Format::Plain`] stream comes back byte for byte.
/// Concatenated gzip members, zstd frames, bzip2 streams and xz streams are
/// all decoded, as `gzip -d` and friends do.
pub fn decompress<R: Read + Send + 'static>(
    mut reader: R,
) -> io::Result<(Format, Box<dyn Read + Send>)> {
    let mut prefix = [0u8; SNIFF_LEN];
    let mut filled = 0;
    // A single read may return fewer bytes than are available.
    while filled < SNIFF_LEN {
        match reader.read(&mut prefix[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let format = detect(&prefix[..filled]);
    let stream = io::Cursor::new(prefix[..filled].to_vec()).chain(reader);
    let decoded: Box<dyn Read + Send> = match format {
        Format::Gzip => Box::new(flate2::read::MultiGzDecoder::new(stream)),
        Format::Zstd => Box::new(zstd::stream::read::Decoder::new(stream)?),
        Format::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(stream)),
        Format::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(stream)),
        Format::Plain => Box::new(stream),
    };
    Ok((format, decoded))
}

/// Size of a tar header block.
const BLOCK: usize = 512;

/// `ADD`'s rule: whether the file, once decompressed, starts with a valid tar
/// header (one whose checksum matches). Such a file is extracted by `ADD`
/// instead of copied.
///
/// A file that merely looks compressed but does not decode, or that is
/// shorter than one header, is not an archive (`Ok(false)`): `ADD` copies it
/// as it is. Only failures to read the file itself are errors.
pub fn is_tar_archive(path: &Path) -> io::Result<bool> {
    let file = File::open(path)?;
    // Decoder errors mean "not an archive"; errors of the file itself must
    // not be mistaken for that, so they are recorded on their way through.
    let source_error = Arc::new(Mutex::new(None));
    let source = ErrorRecorder {
        inner: file,
        error: Arc::clone(&source_error),
    };
    let mut header = [0u8; BLOCK];
    let filled = match decompress(source) {
        Ok((_, mut decoded)) => read_up_to(&mut decoded, &mut header),
        Err(e) => Err(e),
    };
    let recorded = source_error.lock().ok().and_then(|mut e| e.take());
    if let Some(e) = recorded {
        return Err(e);
    }
    match filled {
        Ok(BLOCK) => Ok(header_checksum_ok(&header)),
        // Short, or not decodable: not an archive.
        Ok(_) | Err(_) => Ok(false),
    }
}

/// Whether a 512-byte block is a tar header with a correct checksum.
///
/// The checksum is the sum of the header's bytes with the checksum field
/// itself counted as spaces. Some old tars summed signed bytes; both sums are
/// accepted, as GNU tar and Go's archive/tar do. An all-zero block (the end
/// of an archive) has no checksum digits and is not a header.
fn header_checksum_ok(block: &[u8; BLOCK]) -> bool {
    let Some(recorded) = parse_octal(&block[148..156]) else {
        return false;
    };
    let mut unsigned: i64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += i64::from(b);
        signed += i64::from(b as i8);
    }
    recorded == unsigned || recorded == signed
}

/// Parses a tar numeric field: optional leading spaces, octal digits, then
/// NULs or spaces. `None` when there are no digits or anything else.
fn parse_octal(field: &[u8]) -> Option<i64> {
    let digits_and_rest = {
        let start = field.iter().position(|&b| b != b' ')?;
        &field[start..]
    };
    let end = digits_and_rest
        .iter()
        .position(|&b| !(b'0'..=b'7').contains(&b))
        .unwrap_or(digits_and_rest.len());
    let (digits, rest) = digits_and_rest.split_at(end);
    if digits.is_empty() || !rest.iter().all(|&b| b == 0 || b == b' ') {
        return None;
    }
    digits.iter().try_fold(0i64, |acc, &d| {
        acc.checked_mul(8)?.checked_add(i64::from(d - b'0'))
    })
}

/// Fills `buf` as far as the stream allows; returns how much was read.
fn read_up_to(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Passes reads through, keeping a copy of the first error the inner reader
/// returns.
struct ErrorRecorder<R> {
    inner: R,
    error: Arc<Mutex<Option<io::Error>>>,
}

impl<R: Read> Read for ErrorRecorder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                let copy = io::Error::new(e.kind(), e.to_string());
                if let Ok(mut slot) = self.error.lock() {
                    slot.get_or_insert(e);
                }
                Err(copy)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_magic() {
        assert_eq!(detect(&[0x1f, 0x8b, 8]), Format::Gzip);
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Format::Zstd);
        assert_eq!(detect(b"BZh9"), Format::Bzip2);
        assert_eq!(detect(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Format::Xz);
        assert_eq!(detect(&[0xfd, 0x37, 0x7a, 0x58, 0x5a]), Format::Plain);
        assert_eq!(detect(b""), Format::Plain);
        assert_eq!(detect(b"\x1f"), Format::Plain);
    }

    #[test]
    fn plain_streams_pass_through_whole() {
        for data in [&b""[..], b"ab", b"abcdef", b"hello, world"] {
            let (format, mut r) = decompress(io::Cursor::new(data.to_vec())).unwrap();
            assert_eq!(format, Format::Plain);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn octal_fields() {
        assert_eq!(parse_octal(b"0001234\0"), Some(0o1234));
        assert_eq!(parse_octal(b"  1234 \0"), Some(0o1234));
        assert_eq!(parse_octal(b"\0\0\0\0\0\0\0\0"), None);
        assert_eq!(parse_octal(b"12x4\0\0\0\0"), None);
        assert_eq!(parse_octal(b"        "), None);
    }

    #[test]
    fn zero_block_is_not_a_header() {
        assert!(!header_checksum_ok(&[0u8; BLOCK]));
    }
}
