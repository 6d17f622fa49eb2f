//! `ADD https://…`: downloads a URL into the build's staging area, hashing
//! it as it streams, and checks `--checksum` when given.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use berth_runtime::snapshot::Staging;
use berth_runtime::store::{Digest, Hasher};

use super::session::Session;

/// A downloaded file, kept until the build ends.
pub struct Download {
    pub path: PathBuf,
    pub file_name: String,
    pub digest: Digest,
    /// From `Last-Modified`, when the server sent one.
    pub mtime: Option<i64>,
    /// Owns the directory holding the file.
    _dir: Staging,
}

impl Download {
    /// The scratch directory holding the file, to keep while it is read.
    pub fn into_staging(self) -> Staging {
        self._dir
    }
}

pub fn download(
    session: &Session<'_>,
    url: &str,
    checksum: Option<&str>,
) -> Result<Download, String> {
    let expected = checksum
        .map(|c| {
            Digest::parse(c).map_err(|e| {
                format!("invalid --checksum \"{c}\": {e} (use sha256:<64 hex digits>)")
            })
        })
        .transpose()?;
    let file_name = url
        .split(['?', '#'])
        .next()
        .and_then(|u| u.rsplit('/').next())
        .filter(|n| !n.is_empty() && !n.contains(':'))
        .unwrap_or("index.html")
        .to_owned();
    let dir = session
        .snapshots
        .stage()
        .map_err(|e| format!("cannot download {url}: {e}"))?;
    let path = dir.path().join("download");

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_body(Some(Duration::from_secs(300)))
        .build()
        .into();
    let mut response = agent
        .get(url)
        .call()
        .map_err(|e| format!("cannot download {url}: {e}"))?;
    let mtime = response
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date);
    let mut reader = response.body_mut().as_reader();
    let mut file = File::create(&path).map_err(|e| format!("cannot download {url}: {e}"))?;
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("cannot download {url}: {e}")),
        };
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| format!("cannot download {url}: {e}"))?;
    }
    let digest = hasher.finish();
    if let Some(expected) = expected
        && expected != digest
    {
        return Err(format!(
            "checksum of {url} does not match: expected {expected}, got {digest}"
        ));
    }
    Ok(Download {
        path,
        file_name,
        digest,
        mtime,
        _dir: dir,
    })
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only form
/// servers are supposed to send.
fn parse_http_date(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, clock, "GMT"] = parts.as_slice() else {
        return None;
    };
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = months.iter().position(|x| x == month)? as i64 + 1;
    let d: i64 = day.parse().ok()?;
    let y: i64 = year.parse().ok()?;
    let mut hms = clock.split(':').map(|p| p.parse::<i64>().ok());
    let (h, mi, s) = (hms.next()??, hms.next()??, hms.next()??);
    let days = crate::time::days_from_civil(y, m, d);
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
