//! `fetch` against a local HTTP/1.1 server (one thread, `Content-Length`, `Range`) serving
//! archives generated in the real formats: a tiny CIFAR-10 binary tar.gz and gzipped IDX files.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use longtail_data::fetch::{self, FetchError, FetchOptions, Layout, Progress, Remote, RemoteFile, Spec, Stage};
use longtail_data::readers::{cifar, idx};
use md5::{Digest, Md5};

// ---------------------------------------------------------------- server

/// How the server answers one request.
#[derive(Clone, Copy, Debug)]
enum Reply {
    /// The file, or the asked range of it (206), or 416 past its end.
    Honest,
    /// Announces the whole length but sends only this many bytes, then closes.
    Truncate(usize),
    /// The whole file with 200, whatever the `Range`.
    IgnoreRange,
    /// This status and an empty body.
    Status(u16),
}

/// One request as the server saw it: path and `Range` header.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    range: Option<String>,
}

struct Server {
    addr: SocketAddr,
    script: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    /// Serves `files` (name -> bytes) at `/<name>`; replies follow the script, then `Honest`.
    fn start(files: HashMap<String, Vec<u8>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, l) = (script.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let reply = s.lock().unwrap().pop_front().unwrap_or(Reply::Honest);
                let _ = handle(stream, &files, reply, &l);
            }
        });
        Server { addr, script, seen }
    }

    fn mirror(&self) -> FetchOptions {
        FetchOptions { mirror: Some(format!("http://{}/", self.addr)), connect_timeout: Duration::from_secs(5), read_timeout: Duration::from_secs(5) }
    }

    fn then(&self, reply: Reply) {
        self.script.lock().unwrap().push_back(reply);
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn handle(mut stream: TcpStream, files: &HashMap<String, Vec<u8>>, reply: Reply, seen: &Mutex<Vec<Seen>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let mut lines = head.lines();
    let path = lines.next().and_then(|l| l.split_whitespace().nth(1)).unwrap_or("/").trim_start_matches('/').to_string();
    let range = lines.find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("range")).map(|(_, v)| v.trim().to_string()));
    seen.lock().unwrap().push(Seen { path: path.clone(), range: range.clone() });
    let send = |stream: &mut TcpStream, status: &str, headers: &str, body: &[u8]| -> std::io::Result<()> {
        write!(stream, "HTTP/1.1 {status}\r\n{headers}Connection: close\r\n\r\n")?;
        stream.write_all(body)?;
        stream.flush()
    };
    let Some(data) = files.get(&path) else {
        return send(&mut stream, "404 Not Found", "Content-Length: 0\r\n", b"");
    };
    let len = data.len();
    match reply {
        Reply::Status(code) => send(&mut stream, &format!("{code} Oops"), "Content-Length: 0\r\n", b""),
        Reply::Truncate(n) => send(&mut stream, "200 OK", &format!("Content-Length: {len}\r\n"), &data[..n.min(len)]),
        Reply::IgnoreRange => send(&mut stream, "200 OK", &format!("Content-Length: {len}\r\n"), data),
        Reply::Honest => match range.as_deref().and_then(|r| r.strip_prefix("bytes=")).and_then(|r| r.trim_end_matches('-').parse::<usize>().ok()) {
            Some(start) if start >= len => {
                send(&mut stream, "416 Range Not Satisfiable", &format!("Content-Range: bytes */{len}\r\nContent-Length: 0\r\n"), b"")
            }
            Some(start) => send(
                &mut stream,
                "206 Partial Content",
                &format!("Content-Range: bytes {start}-{}/{len}\r\nContent-Length: {}\r\n", len - 1, len - start),
                &data[start..],
            ),
            None => send(&mut stream, "200 OK", &format!("Content-Length: {len}\r\n"), data),
        },
    }
}

// ---------------------------------------------------------------- archives

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// CIFAR-10 binary records: `n` of them, labels cycling from `first`.
fn cifar_records(n: usize, first: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push((first as usize + i) as u8 % 10);
        out.extend((0..3072).map(|p| ((p + i) % 251) as u8));
    }
    out
}

const CLASSES: [&str; 10] = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// `cifar-10-binary.tar.gz` in the real layout, two records per batch.
fn cifar10_tar_gz() -> Vec<u8> {
    let mut files: Vec<(String, Vec<u8>)> = (1..=5).map(|b| (format!("data_batch_{b}.bin"), cifar_records(2, b as u8))).collect();
    files.push(("test_batch.bin".into(), cifar_records(3, 7)));
    files.push(("batches.meta.txt".into(), format!("{}\n\n", CLASSES.join("\n")).into_bytes()));
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    tar.append_data(&mut dir, "cifar-10-batches-bin/", std::io::empty()).unwrap();
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, format!("cifar-10-batches-bin/{name}"), data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// A tar.gz whose one entry has the raw name `name` (the builder would refuse `..`).
fn tar_gz_with_raw_name(name: &str) -> Vec<u8> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(4);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    tar.append(&h, &b"evil"[..]).unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

fn idx(magic: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, magic];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend(data);
    out
}

/// The four Fashion-MNIST files, gzipped: 6 training and 4 test images of 28x28.
fn fashion_files() -> Vec<(String, Vec<u8>)> {
    let images = |n: u32| idx(3, &[n, 28, 28], &(0..n * 784).map(|i| (i % 256) as u8).collect::<Vec<_>>());
    let labels = |n: u32| idx(1, &[n], &(0..n).map(|i| (i % 10) as u8).collect::<Vec<_>>());
    vec![
        ("train-images-idx3-ubyte.gz".into(), gzip(&images(6))),
        ("train-labels-idx1-ubyte.gz".into(), gzip(&labels(6))),
        ("t10k-images-idx3-ubyte.gz".into(), gzip(&images(4))),
        ("t10k-labels-idx1-ubyte.gz".into(), gzip(&labels(4))),
    ]
}

fn entry(name: &str, data: &[u8]) -> RemoteFile {
    RemoteFile::md5(name, data.len() as u64, &md5_hex(data))
}

/// The real CIFAR-10 catalog entry with the test archive's name, size and digest.
fn cifar_spec(file: RemoteFile) -> Spec {
    Spec { files: vec![file], ..Remote::Cifar10.spec() }
}

fn served(name: &str, data: &[u8]) -> Server {
    Server::start(HashMap::from([(name.to_string(), data.to_vec())]))
}

fn quiet(_: Progress) {}

fn err_text(e: &FetchError) -> String {
    let text = e.to_string();
    eprintln!("error as shown: {text}");
    text
}

const CIFAR: &str = "cifar-10-binary.tar.gz";

// ---------------------------------------------------------------- (a) good downloads

#[test]
fn cifar10_downloads_extracts_and_reads_and_is_not_fetched_twice() {
    let archive = cifar10_tar_gz();
    let server = served(CIFAR, &archive);
    let dest = tempfile::tempdir().unwrap();
    let spec = cifar_spec(entry(CIFAR, &archive));
    let mut stages = Vec::new();
    let dir = fetch::fetch_spec(&spec, dest.path(), &server.mirror(), &mut |p: Progress| stages.push((p.stage, p.done, p.total))).unwrap();
    assert_eq!(dir, dest.path().join("cifar-10-batches-bin"));
    let splits = cifar::read_cifar10(dest.path()).unwrap();
    assert_eq!((splits.train.len(), splits.test.len()), (10, 3));
    assert_eq!(splits.train.class_names[0], "airplane");
    // progress: the download ends at the archive's size, then it is hashed and unpacked
    let size = archive.len() as u64;
    assert!(stages.contains(&(Stage::Download, size, Some(size))), "{stages:?}");
    assert!(stages.iter().any(|s| s.0 == Stage::Verify) && stages.iter().any(|s| s.0 == Stage::Extract));
    assert!(!dest.path().join(fetch::PARTIAL_DIR).exists(), "the partial folder is cleaned up");
    // present: no second request
    assert_eq!(server.seen().len(), 1);
    assert_eq!(fetch::fetch_spec(&spec, dest.path(), &server.mirror(), &mut quiet).unwrap(), dir);
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn fashion_mnist_downloads_into_the_idx_layout_and_verified_files_are_kept() {
    let files = fashion_files();
    let server = Server::start(files.iter().cloned().collect());
    let spec = Spec { files: files.iter().map(|(n, d)| entry(n, d)).collect(), ..Remote::FashionMnist.spec() };
    let dest = tempfile::tempdir().unwrap();
    let dir = fetch::fetch_spec(&spec, dest.path(), &server.mirror(), &mut quiet).unwrap();
    assert_eq!(dir, dest.path());
    assert_eq!(idx::locate_fashion_mnist(Some(dest.path())).unwrap(), dest.path());
    let splits = idx::read_fashion_mnist(Some(dest.path())).unwrap();
    assert_eq!((splits.train.len(), splits.test.len()), (6, 4));
    assert_eq!(server.seen().len(), 4);
    // all four verified on disk: nothing fetched; one corrupted: only that one fetched again
    fetch::fetch_spec(&spec, dest.path(), &server.mirror(), &mut quiet).unwrap();
    assert_eq!(server.seen().len(), 4);
    std::fs::write(dest.path().join("t10k-labels-idx1-ubyte.gz"), b"garbage").unwrap();
    fetch::fetch_spec(&spec, dest.path(), &server.mirror(), &mut quiet).unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[4].path, "t10k-labels-idx1-ubyte.gz");
    idx::read_fashion_mnist(Some(dest.path())).unwrap();
}

#[test]
fn fashion_mnist_files_appear_only_when_all_are_verified() {
    let files = fashion_files();
    let server = Server::start(files.iter().cloned().collect());
    let spec = Spec { files: files.iter().map(|(n, d)| entry(n, d)).collect(), ..Remote::FashionMnist.spec() };
    let dest = tempfile::tempdir().unwrap();
    server.then(Reply::Honest);
    server.then(Reply::Honest);
    server.then(Reply::Status(503)); // the third file fails
    let e = fetch::fetch_spec(&spec, dest.path(), &server.mirror(), &mut quiet).unwrap_err();
    assert!(err_text(&e).contains("HTTP 503"));
    for (name, _) in &files {
        assert!(!dest.path().join(name).exists(), "{name} must not be in place before the set is complete");
    }
    assert!(idx::locate_fashion_mnist(Some(dest.path())).is_err());
    // the two verified files are reused: only the last two are requested again
    fetch::fetch_spec(&spec, dest.path(), &server.mirror(), &mut quiet).unwrap();
    let paths: Vec<String> = server.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths[3..], ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]);
    idx::read_fashion_mnist(Some(dest.path())).unwrap();
}

// ---------------------------------------------------------------- (b) wrong checksum

#[test]
fn a_wrong_checksum_is_named_and_leaves_nothing_behind() {
    let archive = cifar10_tar_gz();
    let server = served(CIFAR, &archive);
    let dest = tempfile::tempdir().unwrap();
    let wrong = "0123456789abcdef0123456789abcdef";
    let spec = cifar_spec(RemoteFile::md5(CIFAR, archive.len() as u64, wrong));
    let e = fetch::fetch_spec(&spec, dest.path(), &server.mirror(), &mut quiet).unwrap_err();
    assert!(matches!(e, FetchError::Checksum { .. }), "{e:?}");
    let text = err_text(&e);
    assert!(text.contains(CIFAR) && text.contains("MD5 mismatch"), "{text}");
    assert!(text.contains(&format!("expected {wrong}")) && text.contains(&format!("got {}", md5_hex(&archive))), "{text}");
    assert!(text.contains(&format!("http://{}/{CIFAR}", server.addr)), "{text}");
    let partial = dest.path().join(fetch::PARTIAL_DIR);
    assert!(!partial.join(format!("{CIFAR}.part")).exists() && !partial.join(CIFAR).exists(), "the bad download is removed");
    assert!(!dest.path().join("cifar-10-batches-bin").exists());
    assert!(cifar::locate_cifar10(dest.path()).is_err());
}

#[test]
fn a_pinned_sha256_is_checked_too() {
    let archive = cifar10_tar_gz();
    let server = served(CIFAR, &archive);
    let dest = tempfile::tempdir().unwrap();
    let mut file = entry(CIFAR, &archive);
    file.sha256 = Some("00".repeat(32));
    let e = fetch::fetch_spec(&cifar_spec(file), dest.path(), &server.mirror(), &mut quiet).unwrap_err();
    assert!(err_text(&e).contains("SHA-256 mismatch"));
    assert!(!dest.path().join("cifar-10-batches-bin").exists());
}

/// torch.hub pins a weights file by the first digits of its SHA-256 (`resnet152-394f9c45.pth`):
/// the right prefix passes, a wrong one is refused.
#[test]
fn a_sha256_prefix_pins_a_file_as_torch_hub_does() {
    use sha2::Digest;
    let body = b"pretend these are weights".repeat(100);
    let sha: String = sha2::Sha256::digest(&body).iter().map(|b| format!("{b:02x}")).collect();
    let name = "weights-0000.pth";
    for (prefix, ok) in [(sha[..8].to_string(), true), ("deadbeef".to_string(), false)] {
        let server = served(name, &body);
        let dest = tempfile::tempdir().unwrap();
        let file = RemoteFile { name: name.into(), size: None, md5: None, sha256: Some(prefix.clone()) };
        let spec = Spec { title: "weights".into(), base_url: "https://example.org".into(), files: vec![file], layout: Layout::Files { marker: name.into() } };
        let result = fetch::fetch_spec(&spec, dest.path(), &server.mirror(), &mut quiet);
        assert_eq!(result.is_ok(), ok, "{prefix}: {result:?}");
        assert_eq!(dest.path().join(name).is_file(), ok);
        if !ok {
            assert!(err_text(&result.unwrap_err()).contains("SHA-256 mismatch"));
        }
    }
}

// ---------------------------------------------------------------- (c) truncated, then resumed

#[test]
fn a_truncated_transfer_errors_then_resumes_with_range() {
    let archive = cifar10_tar_gz();
    let half = archive.len() / 2;
    let server = served(CIFAR, &archive);
    let dest = tempfile::tempdir().unwrap();
    let spec = cifar_spec(entry(CIFAR, &archive));
    server.then(Reply::Truncate(half));
    let e = fetch::fetch_spec(&spec, dest.path(), &server.mirror(), &mut quiet).unwrap_err();
    assert!(matches!(e, FetchError::Truncated { .. }), "{e:?}");
    let text = err_text(&e);
    assert!(text.contains(&format!("http://{}/{CIFAR}", server.addr)), "{text}");
    assert!(text.contains(&format!("cut short after {half} of {} bytes", archive.len())), "{text}");
    assert!(!dest.path().join("cifar-10-batches-bin").exists(), "no half-written dataset");
    assert!(cifar::locate_cifar10(dest.path()).is_err());
    let part = dest.path().join(fetch::PARTIAL_DIR).join(format!("{CIFAR}.part"));
    assert_eq!(std::fs::metadata(&part).unwrap().len(), half as u64, "the partial file stays for resume");

    let mut first_report = None;
    fetch::fetch_spec(&spec, dest.path(), &server.mirror(), &mut |p: Progress| {
        if p.stage == Stage::Download && first_report.is_none() {
            first_report = Some((p.done, p.total));
        }
    })
    .unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].range, None);
    assert_eq!(seen[1].range.as_deref(), Some(format!("bytes={half}-").as_str()));
    assert_eq!(first_report, Some((half as u64, Some(archive.len() as u64))), "progress starts at the resumed offset");
    assert_eq!(cifar::read_cifar10(dest.path()).unwrap().train.len(), 10);
}

#[test]
fn a_server_ignoring_range_restarts_from_zero() {
    let archive = cifar10_tar_gz();
    let server = served(CIFAR, &archive);
    let dest = tempfile::tempdir().unwrap();
    let spec = cifar_spec(entry(CIFAR, &archive));
    server.then(Reply::Truncate(1000));
    assert!(fetch::fetch_spec(&spec, dest.path(), &server.mirror(), &mut quiet).is_err());
    server.then(Reply::IgnoreRange);
    fetch::fetch_spec(&spec, dest.path(), &server.mirror(), &mut quiet).unwrap();
    assert_eq!(server.seen()[1].range.as_deref(), Some("bytes=1000-"));
    assert_eq!(cifar::read_cifar10(dest.path()).unwrap().test.len(), 3);
}

#[test]
fn a_partial_file_the_server_cannot_extend_416_restarts() {
    let archive = cifar10_tar_gz();
    let server = served(CIFAR, &archive);
    let dest = tempfile::tempdir().unwrap();
    // a stale partial file longer than the served one, with no size pinned to notice it
    let partial = dest.path().join(fetch::PARTIAL_DIR);
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join(format!("{CIFAR}.part")), vec![0u8; archive.len() + 10]).unwrap();
    let mut file = entry(CIFAR, &archive);
    file.size = None;
    fetch::fetch_spec(&cifar_spec(file), dest.path(), &server.mirror(), &mut quiet).unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].range.is_some() && seen[1].range.is_none());
    cifar::read_cifar10(dest.path()).unwrap();
}

// ---------------------------------------------------------------- (d) server error

#[test]
fn a_server_error_names_the_url() {
    let archive = cifar10_tar_gz();
    let server = served(CIFAR, &archive);
    let dest = tempfile::tempdir().unwrap();
    server.then(Reply::Status(500));
    let e = fetch::fetch_spec(&cifar_spec(entry(CIFAR, &archive)), dest.path(), &server.mirror(), &mut quiet).unwrap_err();
    assert!(matches!(e, FetchError::Http { status: 500, .. }) && !e.is_offline(), "{e:?}");
    assert_eq!(err_text(&e), format!("http://{}/{CIFAR}: the server answered HTTP 500", server.addr));
    assert!(!dest.path().join("cifar-10-batches-bin").exists());
    // a missing file is a 404, named the same way
    let spec = cifar_spec(entry("nope.tar.gz", &archive));
    let e = fetch::fetch_spec(&spec, dest.path(), &server.mirror(), &mut quiet).unwrap_err();
    assert!(err_text(&e).ends_with("/nope.tar.gz: the server answered HTTP 404"));
}

// ---------------------------------------------------------------- (e) offline

#[test]
fn connection_refused_is_the_offline_variant() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // closed again: nothing listens there
    let dest = tempfile::tempdir().unwrap();
    let opts = FetchOptions { mirror: Some(format!("http://127.0.0.1:{port}")), ..FetchOptions::default() };
    let e = fetch::fetch(Remote::FashionMnist, dest.path(), &opts, &mut quiet).unwrap_err();
    assert!(e.is_offline(), "{e:?}");
    let text = err_text(&e);
    assert!(text.starts_with(&format!("cannot reach http://127.0.0.1:{port}/train-images-idx3-ubyte.gz: ")), "{text}");
    assert!(text.contains("offline"), "{text}");
    assert!(idx::locate_fashion_mnist(Some(dest.path())).is_err());
    assert!(!dest.path().join(fetch::PARTIAL_DIR).exists(), "nothing to resume: no empty .partial left");
}

/// The usual offline machine: the host name does not resolve (`.invalid` never does, RFC 2606).
#[test]
fn an_unknown_host_is_the_offline_variant() {
    let dest = tempfile::tempdir().unwrap();
    let opts = FetchOptions { mirror: Some("http://longtail-test.invalid".into()), ..FetchOptions::default() };
    let e = fetch::fetch(Remote::Cifar10, &dest.path().join("c10"), &opts, &mut quiet).unwrap_err();
    assert!(e.is_offline(), "{e:?}");
    assert!(!dest.path().join("c10").exists(), "no folder is left behind");
}

// ---------------------------------------------------------------- (f) path escape

#[test]
fn a_tar_entry_escaping_the_destination_is_refused() {
    for (raw, why) in [("cifar-10-batches-bin/../../evil", "through `..`"), ("/tmp/longtail-evil", "absolute path")] {
        let archive = tar_gz_with_raw_name(raw);
        let server = served(CIFAR, &archive);
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("data");
        let e = fetch::fetch_spec(&cifar_spec(entry(CIFAR, &archive)), &dest, &server.mirror(), &mut quiet).unwrap_err();
        assert!(matches!(e, FetchError::UnsafeEntry { .. }), "{e:?}");
        let text = err_text(&e);
        assert!(text.contains(&format!("entry `{raw}`")) && text.contains(why) && text.contains("refusing to extract"), "{text}");
        assert!(!root.path().join("evil").exists() && !dest.join("evil").exists());
        assert!(!dest.join("cifar-10-batches-bin").exists());
        assert!(!dest.join(fetch::PARTIAL_DIR).join("cifar-10-batches-bin.unpacking").exists(), "the staging folder is removed");
    }
    assert!(!Path::new("/tmp/longtail-evil").exists());
}

#[test]
fn an_archive_without_the_expected_files_is_refused() {
    let archive = tar_gz_with_raw_name("something-else.bin");
    let server = served(CIFAR, &archive);
    let dest = tempfile::tempdir().unwrap();
    let e = fetch::fetch_spec(&cifar_spec(entry(CIFAR, &archive)), dest.path(), &server.mirror(), &mut quiet).unwrap_err();
    assert!(err_text(&e).contains("holds no cifar-10-batches-bin/data_batch_1.bin"));
    assert!(!dest.path().join("cifar-10-batches-bin").exists());
}

// ---------------------------------------------------------------- catalog

#[test]
fn the_catalog_describes_the_official_archives() {
    let cifar = fetch::describe(Remote::Cifar10, &FetchOptions::default());
    assert_eq!(
        cifar.line(Path::new("data/cifar10")),
        "fetching CIFAR-10 (162.2 MiB) from https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz into data/cifar10"
    );
    let mirrored = fetch::describe(Remote::FashionMnist, &FetchOptions { mirror: Some("https://example.org/fm/".into()), ..FetchOptions::default() });
    assert_eq!(mirrored.files.len(), 4);
    assert_eq!(mirrored.total_bytes, Some(26_421_880 + 29_515 + 4_422_102 + 5_148));
    assert_eq!(mirrored.line(Path::new("d")), "fetching Fashion-MNIST (4 files, 29.4 MiB) from https://example.org/fm into d");
    for r in Remote::ALL {
        assert_eq!(Remote::from_name(r.name()), Some(r));
        let spec = r.spec();
        assert!(spec.base_url.starts_with("https://"), "{r}");
        for f in &spec.files {
            if r == Remote::Resnet152Imagenet {
                // torch.hub's check: the SHA-256 prefix in the file name
                assert_eq!((f.md5.as_deref(), f.sha256.as_deref()), (None, Some("394f9c45")));
                continue;
            }
            assert_eq!(f.md5.as_ref().map(String::len), Some(32), "{}", f.name);
            assert!(f.size.is_some());
        }
    }
    assert!(matches!(Remote::Cifar100.spec().layout, Layout::Archive { ref folder, .. } if folder == "cifar-100-binary"));
}
