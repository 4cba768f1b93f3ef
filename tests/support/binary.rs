//! The `roomcast` binary as a child process on a free loopback port, as an operator runs it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Roomcast {
    child: Child,
    pub addr: SocketAddr,
    _certs: PathBuf,
}

impl Roomcast {
    /// The binary with `RUST_LOG=warn` and these extra arguments.
    pub fn start(args: &[&str]) -> Self {
        let mut command = Self::command();
        command.env("RUST_LOG", "warn").args(args);
        Self::spawn(&mut command)
    }

    /// Starts with info-level logs appended to `log`.
    pub fn start_logging_to(log: &std::path::Path) -> Self {
        let mut command = Self::command();
        command.env("RUST_LOG", "info").arg("--log-file").arg(log);
        Self::spawn(&mut command)
    }

    /// The binary Cargo built for these tests (wherever `CARGO_TARGET_DIR` puts it).
    pub fn command() -> Command {
        Command::new(env!("CARGO_BIN_EXE_roomcast"))
    }

    /// Starts `command` on a free loopback port, plain HTTP only, media on IPv4 loopback.
    pub fn spawn(command: &mut Command) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let certs =
            std::env::temp_dir().join(format!("roomcast-binary-{}-{n}", std::process::id()));
        let mut child = command
            .args([
                "--http",
                "127.0.0.1:0",
                "--https",
                "off",
                "--media-ip",
                "127.0.0.1",
            ])
            .arg("--cert-dir")
            .arg(&certs)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start roomcast");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next().expect("a line").expect("stdout");
        let addr = line
            .rsplit("http://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Self {
            child,
            addr,
            _certs: certs,
        }
    }

    /// The raw HTTP/1.1 response to `GET path`.
    pub fn get(&self, path: &str) -> String {
        self.request(&format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        ))
    }

    /// The raw response to a raw request.
    pub fn request(&self, request: &str) -> String {
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        String::from_utf8_lossy(&response).into_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident set size in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; panics after `limit`.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "roomcast did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Roomcast {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._certs);
    }
}
