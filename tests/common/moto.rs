//! The one way the tests start moto, shared by both crates' tests (lambda-image includes this
//! file by path): the server each test binary shares, and servers of a test's own where a
//! setting (IAM enforcement, a concurrency quota) would change every caller of a server.
//!
//! Each server runs under a small shell that kills it as soon as the pipe from this process
//! closes: when the [`Moto`] is dropped, and when the test process ends however it ends
//! (a panic, a kill), so no moto outlives its tests.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on loopback (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on loopback")
}

/// The workspace root, whichever of its crates includes this file.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if manifest.join("Cargo.lock").exists() {
        manifest
    } else {
        manifest
            .parent()
            .expect("a workspace member lives in the workspace")
            .to_path_buf()
    }
}

/// The virtualenv that `scripts/moto.sh` installs moto into (`MOTO_VENV`, else `.venv`).
pub fn venv() -> PathBuf {
    std::env::var_os("MOTO_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv"))
}

/// A moto server on loopback; stopped when dropped.
pub struct Moto {
    keeper: Child,
    /// Closing it tells the keeper shell to stop moto.
    pipe: Option<ChildStdin>,
    pub port: u16,
    pub url: String,
}

impl Moto {
    /// Starts moto with `env` added to its environment and waits until it answers.
    pub fn start(env: &[(&str, &str)]) -> Moto {
        let bin = venv().join("bin/moto_server");
        assert!(
            bin.exists(),
            "{} is not installed: run scripts/test.sh (it installs moto), or set THUMBCTL_TEST_ENDPOINT",
            bin.display()
        );
        let port = free_port();
        let mut keeper = Command::new("sh")
            .arg("-c")
            .arg(r#""$0" -H 127.0.0.1 -p "$1" >/dev/null 2>&1 & pid=$!; echo started; read _; kill $pid; wait $pid"#)
            .arg(&bin)
            .arg(port.to_string())
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start moto under its keeper shell");
        let mut line = String::new();
        BufReader::new(keeper.stdout.take().expect("keeper stdout"))
            .read_line(&mut line)
            .expect("the keeper shell started moto");
        let pipe = keeper.stdin.take();
        let moto = Moto {
            keeper,
            pipe,
            port,
            url: format!("http://127.0.0.1:{port}"),
        };
        moto.wait_ready();
        moto
    }

    /// Until moto answers its own API (a listening socket alone is not yet a served request).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let req = "GET /moto-api/ HTTP/1.1\r\nHost: moto\r\nConnection: close\r\n\r\n";
                let mut head = [0u8; 12];
                if s.write_all(req.as_bytes()).is_ok()
                    && s.read_exact(&mut head).is_ok()
                    && head.starts_with(b"HTTP/1.1 2")
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "moto did not start on {}",
                self.url
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        drop(self.pipe.take());
        let _ = self.keeper.wait();
    }
}
