//! One file over HTTP(S) into a `.part` file, resumed with a `Range` request when a previous
//! transfer was cut short.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use ureq::Agent;

use super::catalog::RemoteFile;
use super::error::{FetchError, Result};
use super::{FetchOptions, Progress, Stage, remove_file};

/// The blocking client with the options' timeouts; statuses are handled here, not as errors.
pub(crate) fn agent(opts: &FetchOptions) -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .timeout_resolve(Some(opts.connect_timeout))
        .timeout_connect(Some(opts.connect_timeout))
        .timeout_recv_response(Some(opts.read_timeout))
        .timeout_per_read(Some(opts.read_timeout))
        .user_agent(format!("longtail/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// What the server agreed to send.
enum Start {
    /// From byte zero (200, or no partial file).
    Fresh,
    /// From the end of the partial file (206 with a matching `Content-Range`).
    Resume(u64),
}

/// Downloads `url` into `part`, appending to what is there when the server honours `Range`.
/// On a transfer cut short the bytes received stay in `part` for the next call.
pub(crate) fn download(agent: &Agent, url: &str, part: &Path, file: &RemoteFile, progress: &mut dyn FnMut(Progress)) -> Result<()> {
    for _attempt in 0..2 {
        let mut have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        if let Some(size) = file.size {
            if have == size {
                return Ok(()); // complete already; the digest check decides
            }
            if have > size {
                remove_file(part)?;
                have = 0;
            }
        }
        let mut request = agent.get(url);
        if have > 0 {
            request = request.header("Range", format!("bytes={have}-"));
        }
        let response = request.call().map_err(|e| transport_error(url, e))?;
        let status = response.status().as_u16();
        let start = match status {
            200 => Start::Fresh,
            206 if have > 0 => match content_range_start(response.headers().get("content-range").and_then(|v| v.to_str().ok())) {
                Some(s) if s == have => Start::Resume(have),
                _ => {
                    remove_file(part)?; // a range we did not ask for: start over
                    continue;
                }
            },
            416 if have > 0 => {
                remove_file(part)?; // the partial file is no prefix the server knows: start over
                continue;
            }
            _ => return Err(FetchError::Http { url: url.into(), status }),
        };
        let length = response.body().content_length();
        let reader = response.into_body().into_reader();
        return receive(reader, url, part, file, start, length, progress);
    }
    Err(FetchError::Network { url: url.into(), reason: "the server refused to resume and then to send the file from the start".into() })
}

/// Writes the body into `part` and checks it was not cut short.
fn receive(
    mut reader: impl Read,
    url: &str,
    part: &Path,
    file: &RemoteFile,
    start: Start,
    length: Option<u64>,
    progress: &mut dyn FnMut(Progress),
) -> Result<()> {
    let offset = match start {
        Start::Fresh => 0,
        Start::Resume(n) => n,
    };
    let out = match start {
        Start::Fresh => File::create(part),
        Start::Resume(_) => OpenOptions::new().append(true).open(part),
    }
    .map_err(|e| FetchError::io(part, e))?;
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let total = length.map(|l| offset + l).or(file.size);
    let mut done = offset;
    let mut buf = vec![0u8; 1 << 16];
    progress(Progress { file: &file.name, stage: Stage::Download, done, total });
    let cut = loop {
        match reader.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => {
                out.write_all(&buf[..n]).map_err(|e| FetchError::io(part, e))?;
                done += n as u64;
                progress(Progress { file: &file.name, stage: Stage::Download, done, total });
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Some(e),
        }
    };
    out.flush().map_err(|e| FetchError::io(part, e))?;
    out.get_ref().sync_all().map_err(|e| FetchError::io(part, e))?;
    let expected = total.unwrap_or(done);
    match cut {
        Some(e) if is_timeout(&e) => Err(FetchError::Network { url: url.into(), reason: format!("read timed out after {done} bytes; run again to resume") }),
        Some(e) => Err(FetchError::Truncated { url: url.into(), received: done, expected, reason: e.to_string(), partial: part.into() }),
        None if done < expected => {
            Err(FetchError::Truncated { url: url.into(), received: done, expected, reason: "connection closed".into(), partial: part.into() })
        }
        None => Ok(()),
    }
}

/// The first byte of a `Content-Range: bytes A-B/T` header.
fn content_range_start(header: Option<&str>) -> Option<u64> {
    let range = header?.trim().strip_prefix("bytes")?.trim_start();
    range.split('-').next()?.trim().parse().ok()
}

fn is_timeout(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut
        || e.get_ref().and_then(|inner| inner.downcast_ref::<ureq::Error>()).is_some_and(|u| matches!(u, ureq::Error::Timeout(_)))
}

/// A failed name lookup (no DNS, an unknown host): std reports it as an uncategorised I/O error
/// ("failed to lookup address information: ..."), which ureq passes on as `Error::Io`.
fn is_lookup_failure(e: &io::Error) -> bool {
    let text = e.to_string();
    text.contains("failed to lookup address") || text.contains("Name or service not known") || text.contains("nodename nor servname")
}

/// Sorts a failed request into "host unreachable" (offline) and everything else.
fn transport_error(url: &str, error: ureq::Error) -> FetchError {
    use io::ErrorKind as K;
    use ureq::Timeout as T;
    let offline = match &error {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => true,
        ureq::Error::Timeout(t) => matches!(t, T::Resolve | T::Connect),
        ureq::Error::Io(e) => {
            matches!(
                e.kind(),
                K::ConnectionRefused | K::NotConnected | K::AddrNotAvailable | K::TimedOut | K::HostUnreachable | K::NetworkUnreachable | K::NetworkDown
            ) || is_lookup_failure(e)
        }
        _ => false,
    };
    let reason = match &error {
        ureq::Error::HostNotFound => "host name not found".to_string(),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::Io(e) => e.to_string(),
        e => e.to_string(),
    };
    if offline { FetchError::Offline { url: url.into(), reason } } else { FetchError::Network { url: url.into(), reason } }
}
