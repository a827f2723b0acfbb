//! What the tests share: a cluster served on its own thread, a small HTTP
//! client, `kubectl` with a kubeconfig of its own, and a TLS front for the
//! tests that need kubectl to send its token (kubectl sends credentials to
//! `https://` servers only).

#![allow(dead_code)]

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use callboard_demo_kube::Options;
use serde_json::Value;

/// A cluster served on a thread of its own (its own runtime), so that the
/// tests can block on `kubectl` and plain sockets. The listener is bound
/// before this returns: the server is reachable at once.
pub struct Cluster {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Cluster {
    pub fn start(options: Options) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let running = callboard_demo_kube::serve(listener, options)
                    .await
                    .expect("serve");
                let _ = stopped.await;
                let _ = running.shutdown().await;
            });
        });
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// A demo cluster's data with these options otherwise.
    pub fn demo(name: &str, token: Option<&str>, fault: callboard_demo_kube::Fault) -> Self {
        Self::start(Options {
            cluster: name.to_owned(),
            token: token.map(str::to_owned),
            objects: callboard_demo_kube::demo_cluster(name).expect("demo cluster"),
            fault,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn get(&self, path: &str) -> Reply {
        request(self.addr, "GET", path, &[], b"")
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        request(self.addr, "GET", path, headers, b"")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on its own connection (`Connection: close`).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
    // A server may answer (413) before reading a large body.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        data = &data[line_end + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

/// Makes sure `binary` exists, installing Debian's `packages` when it does
/// not (as root; one install at a time across test processes, waiting for
/// dpkg's lock rather than failing on it).
pub fn ensure_installed(binary: &str, packages: &[&str]) {
    static INSTALLING: Mutex<()> = Mutex::new(());
    if Path::new(binary).exists() {
        return;
    }
    let _one = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let lock_path = std::env::temp_dir().join("callboard-apt-install.lock");
    let lock = std::fs::File::create(&lock_path).expect("apt lock file");
    lock.lock().expect("apt lock");
    if Path::new(binary).exists() {
        return;
    }
    eprintln!("installing {} with apt-get", packages.join(" "));
    let install = format!(
        "apt-get -o DPkg::Lock::Timeout=600 update && DEBIAN_FRONTEND=noninteractive \
         apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends {}",
        packages.join(" ")
    );
    let status = Command::new("sh")
        .args(["-c", &install])
        .stdin(Stdio::null())
        .status();
    assert!(
        matches!(status, Ok(s) if s.success()) && Path::new(binary).exists(),
        "{binary} is missing and `apt-get install {}` failed ({status:?}); install the Debian \
         package(s) {} as root",
        packages.join(" "),
        packages.join(" ")
    );
}

pub const KUBECTL: &str = "/usr/bin/kubectl";

/// The kubectl to run: `CALLBOARD_TEST_KUBECTL` when set (to try another
/// release), else Debian's, installed when missing.
fn kubectl_binary() -> PathBuf {
    match std::env::var_os("CALLBOARD_TEST_KUBECTL") {
        Some(path) => PathBuf::from(path),
        None => {
            ensure_installed(KUBECTL, &["kubernetes-client"]);
            PathBuf::from(KUBECTL)
        }
    }
}

/// What a kubectl run printed.
#[derive(Debug)]
pub struct Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        assert!(self.success, "kubectl failed: {}", self.stderr);
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("kubectl printed no JSON ({e}): {}", self.stdout))
    }

    /// `metadata.name` of each item of a printed list.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.json()["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_owned())
            .collect();
        names.sort();
        names
    }
}

/// kubectl with a kubeconfig, a discovery cache and a HOME of its own, so
/// nothing of the machine's configuration leaks in or out.
pub struct Kubectl {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    binary: PathBuf,
}

impl Kubectl {
    /// `server` is the cluster URL; `token` goes into the kubeconfig user;
    /// `ca` is the certificate an `https` server is verified with.
    pub fn new(server: &str, token: Option<&str>, ca: Option<&Path>) -> Self {
        let binary = kubectl_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        let mut cluster = format!("    server: {server}\n");
        if let Some(ca) = ca {
            cluster.push_str(&format!("    certificate-authority: {}\n", ca.display()));
        }
        let user = match token {
            Some(token) => format!("  user:\n    token: {token}\n"),
            None => "  user: {}\n".to_owned(),
        };
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: demo\n  cluster:\n{cluster}users:\n- name: demo\n{user}contexts:\n- name: demo\n  context:\n    cluster: demo\n    user: demo\ncurrent-context: demo\n"
        );
        std::fs::write(&kubeconfig, config).expect("write kubeconfig");
        Self {
            dir,
            kubeconfig,
            binary,
        }
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let cache = self.dir.path().join("cache");
        let output = Command::new(&self.binary)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&cache)
            .arg("--request-timeout=30s")
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("KUBECONFIG")
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env("NO_PROXY", "127.0.0.1")
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl");
        Run {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs and asserts success.
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert!(
            run.success,
            "kubectl {args:?} failed:\n{}\n{}",
            run.stdout, run.stderr
        );
        run
    }
}

/// A TLS front for a cluster: socat terminating TLS with a fresh
/// self-signed certificate for 127.0.0.1 and forwarding to the plain
/// HTTP server. kubectl only sends a kubeconfig's token to `https://`
/// servers.
pub struct TlsFront {
    pub url: String,
    pub ca: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl TlsFront {
    pub fn new(backend: SocketAddr) -> Self {
        ensure_installed("/usr/bin/openssl", &["openssl"]);
        ensure_installed("/usr/bin/socat", &["socat"]);
        let dir = tempfile::tempdir().expect("temp dir");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let status = Command::new("/usr/bin/openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run openssl");
        assert!(status.success(), "openssl req failed");
        // socat cannot report the port it got, so take a free one; retry
        // if another process takes it first.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let mut child = Command::new("/usr/bin/socat")
                .arg(format!(
                    "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
                    cert.display(),
                    key.display()
                ))
                .arg(format!("TCP:{backend}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("run socat");
            let deadline = Instant::now() + Duration::from_secs(10);
            let ready = loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    break true;
                }
                if matches!(child.try_wait(), Ok(Some(_))) || Instant::now() > deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            if ready {
                return Self {
                    url: format!("https://127.0.0.1:{port}"),
                    ca: cert,
                    child,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("socat did not start listening");
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
