//! What the CLI tests that run `alp` processes share: the binary, a process guard, polling with
//! the processes' logs on a timeout, `alp client` verdicts and `/metrics` samples.
//!
//! Each test binary compiles its own copy (`mod common;`); an item some test file does not use is
//! marked `#[allow(dead_code)]`.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

#[allow(dead_code)]
pub const OK: &str = "0 (OK)";
#[allow(dead_code)]
pub const DENIED: &str = "7 (PERMISSION_DENIED)";

/// The repository's `examples` directory.
pub fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// `alp ARGS`, run to completion with no stdin.
pub fn alp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alp")).args(args).stdin(Stdio::null()).output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[allow(dead_code)]
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A child process, killed and reaped when dropped.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `alp ARGS` in the background, stderr to `log`.
pub fn spawn(args: &[&str], log: &Path) -> Kill {
    spawn_binary(Path::new(env!("CARGO_BIN_EXE_alp")), args, log)
}

/// `binary` with `args` in the background, stderr (where it logs) to `log`.
pub fn spawn_binary(binary: &Path, args: &[&str], log: &Path) -> Kill {
    let log = std::fs::File::create(log).unwrap();
    Kill(Command::new(binary).args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn().unwrap())
}

/// A free loopback `host:port` (bound and released).
#[allow(dead_code)]
pub fn free_addr() -> String {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string()
}

/// Polls `ok` every 50 ms for up to 15 s; on a timeout, fails with every `*.log` in `logs`.
pub fn eventually(what: &str, logs: &Path, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(logs).map(|dir| dir.filter_map(|e| Some(e.ok()?.path())).collect()).unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "log"));
    files.sort();
    let mut text = String::new();
    for f in files {
        let name = f.file_stem().unwrap_or_default().to_string_lossy();
        text += &format!("\n--- {name}\n{}", std::fs::read_to_string(&f).unwrap_or_default());
    }
    panic!("timed out: {what}{text}");
}

/// `alp client`'s answer for `sa` in `ns` calling the demo's database (127.0.0.13:8443) from
/// `ip`: code and trace ("none" for what it does not print).
#[allow(dead_code)]
pub fn client(sock: &Path, ns: &str, sa: &str, ip: &str, method: &str, path: &str) -> (String, String) {
    let out = alp(&[
        "client",
        ns,
        sa,
        "-d",
        sock.to_str().unwrap(),
        "--method",
        method,
        "--path",
        path,
        "--source-ip",
        ip,
        "--source-port",
        "40000",
        "--dest-ip",
        "127.0.0.13",
        "--dest-port",
        "8443",
    ]);
    answer(&out)
}

/// The code and trace `alp client` printed ("none" for what it did not print).
pub fn answer(out: &Output) -> (String, String) {
    let text = stdout(out);
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)).unwrap_or("none").to_owned();
    (field("code: "), field("trace: "))
}

/// The code of [`client`]'s answer.
#[allow(dead_code)]
pub fn verdict(sock: &Path, ns: &str, sa: &str, ip: &str, method: &str, path: &str) -> String {
    client(sock, ns, sa, ip, method, path).0
}

/// `GET /metrics` over plain HTTP/1.0 from `addr`; the body, or `None` if that failed.
#[allow(dead_code)]
pub fn scrape(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).ok()?;
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: agent\r\n\r\n").ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
}

/// The value of the sample named exactly `series` (name and labels) in a scrape.
#[allow(dead_code)]
pub fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}
