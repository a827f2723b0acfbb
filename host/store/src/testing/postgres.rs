//! A private PostgreSQL cluster for tests, driven through PostgreSQL's own
//! binaries (`initdb`, `postgres`, `pg_ctl`, `pg_isready`, `psql`): this
//! crate never links a driver.
//!
//! [`Cluster::start`] finds PostgreSQL's binaries (installing Debian's
//! `postgresql` package when they are missing), creates a cluster in a
//! temporary directory and starts it on a free port of 127.0.0.1. When the
//! tests run as root, `initdb` and `postgres` run as the `postgres` user.
//! The superuser `postgres` has a random password ([`Cluster::password`]):
//! TCP connections must give it (`scram-sha-256`), the private Unix socket
//! that [`Cluster::psql`] uses is trusted.
//!
//! [`shared`] is one cluster per test process, with a fresh database per
//! test ([`Cluster::create_database`]). Statics never drop, so every cluster
//! also starts a watchdog in its own process group: it waits for the end of
//! a pipe this process holds, which closes when the process exits however it
//! exits, then stops the server and removes its files. No server outlives
//! the test run.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The major version looked for first.
const MAJOR: &str = "15";

/// How long the server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Connections the server accepts (pools of many tests share it).
const MAX_CONNECTIONS: u32 = 300;

/// Ports tried before giving up when another process takes the free port
/// first.
const PORT_ATTEMPTS: usize = 5;

/// A running PostgreSQL server with its own data directory, stopped and
/// removed on drop.
pub struct Cluster {
    /// Folder of PostgreSQL's binaries.
    bin: PathBuf,
    /// Holds `data/`, `sock/` and `server.log`; removed on drop.
    root: tempfile::TempDir,
    port: u16,
    password: String,
    /// Whether `initdb`, `postgres` and `pg_ctl` run as the `postgres` user.
    as_postgres: bool,
    /// The running server (or `runuser` in front of it).
    server: Mutex<Option<Child>>,
    /// Held open for the life of the cluster: its end wakes the watchdog.
    watchdog: Mutex<Option<(Child, ChildStdin)>>,
    /// Makes database names unique within the process.
    databases: AtomicU64,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("bin", &self.bin)
            .field("root", &self.root.path())
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// One cluster per test process, started on first use. Tests share it and
/// take a fresh database each ([`Cluster::create_database`]); they must not
/// stop or restart it (start a private [`Cluster`] for that).
///
/// # Panics
///
/// When the cluster cannot start (the message holds the reason and the
/// server log).
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(|| match Cluster::start() {
        Ok(cluster) => cluster,
        Err(e) => panic!("the shared PostgreSQL test cluster did not start: {e}"),
    })
}

impl Cluster {
    /// Creates and starts a new cluster (blocking: async callers use
    /// `spawn_blocking`). Installs PostgreSQL first if its binaries are
    /// missing.
    pub fn start() -> Result<Self, String> {
        let bin = find_or_install_binaries()?;
        let as_postgres = running_as_root()?;
        let root = tempfile::Builder::new()
            .prefix("callboard-pg-")
            .tempdir()
            .map_err(|e| format!("creating a temporary directory: {e}"))?;
        for dir in ["data", "sock"] {
            std::fs::create_dir(root.path().join(dir))
                .map_err(|e| format!("creating {dir}: {e}"))?;
        }
        if as_postgres {
            let (uid, gid) = postgres_ids()?;
            for path in [
                root.path().to_owned(),
                root.path().join("data"),
                root.path().join("sock"),
            ] {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                    .map_err(|e| format!("chown {} to postgres: {e}", path.display()))?;
            }
        }
        let password = uuid::Uuid::new_v4().simple().to_string();
        let cluster = Self {
            bin,
            root,
            port: 0,
            password,
            as_postgres,
            server: Mutex::new(None),
            watchdog: Mutex::new(None),
            databases: AtomicU64::new(0),
        };
        cluster.initdb()?;
        cluster.spawn_watchdog()?;
        let mut cluster = cluster;
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            cluster.port = free_port()?;
            match cluster.launch() {
                Ok(()) => return Ok(cluster),
                Err(e) if e.contains("Address already in use") => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(format!(
            "no free port after {PORT_ATTEMPTS} attempts; last error: {last}"
        ))
    }

    /// The superuser's password (user `postgres`).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The TCP port the server listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `db` with the superuser's credentials.
    pub fn url_of(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// The URL of the default `postgres` database.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// Creates an empty database with a unique name and returns its URL
    /// (`postgres://postgres:<password>@127.0.0.1:<port>/<db>`).
    ///
    /// # Panics
    ///
    /// When `CREATE DATABASE` fails.
    pub fn create_database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "cb_{}_{n}_{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        if let Err(e) = self.psql("postgres", &format!("CREATE DATABASE \"{name}\"")) {
            panic!("creating test database {name}: {e}");
        }
        self.url_of(&name)
    }

    /// Runs `sql` in database `db` with `psql` as the superuser (through the
    /// private socket) and returns what it printed: unaligned, tuples only,
    /// trimmed; rows on separate lines, columns separated by `|`.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let output = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                "postgres",
            ])
            .arg("-h")
            .arg(self.socket_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(db)
            .arg("-c")
            .arg(sql)
            .env_remove("PGPASSWORD")
            .env_remove("PGSERVICE")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running psql: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "psql failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Stops the server (fast shutdown: clients are disconnected, data is
    /// kept). [`Cluster::start_again`] brings it back on the same port.
    pub fn stop(&self) -> Result<(), String> {
        let mut server = self
            .server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(mut child) = server.take() else {
            return Ok(());
        };
        let stopped = self.pg_ctl_stop("fast");
        if stopped.is_err() {
            // Last resort: the postmaster's pid is the first line of its pid file.
            let _ = self.pg_ctl_stop("immediate");
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
        stopped
    }

    /// Starts the server again after [`Cluster::stop`], on the same port
    /// with the same data, and waits until it accepts connections.
    pub fn start_again(&self) -> Result<(), String> {
        self.launch()
    }

    /// Stops and starts the server (same port, same data).
    pub fn restart(&self) -> Result<(), String> {
        self.stop()?;
        self.start_again()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("server.log")).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.root.path().join("sock")
    }

    /// A command for a server binary, as the `postgres` user when root.
    fn server_command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn initdb(&self) -> Result<(), String> {
        let pwfile = self.root.path().join("pwfile");
        std::fs::write(&pwfile, format!("{}\n", self.password))
            .map_err(|e| format!("writing the password file: {e}"))?;
        if self.as_postgres {
            let (uid, gid) = postgres_ids()?;
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))
                .map_err(|e| format!("chown the password file: {e}"))?;
        }
        let output = self
            .server_command("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args([
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .current_dir(self.root.path())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running initdb: {e}"))?;
        let _ = std::fs::remove_file(&pwfile);
        if !output.status.success() {
            return Err(format!(
                "initdb failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(())
    }

    /// Starts the watchdog: in its own process group (a Ctrl-C to the test
    /// run does not reach it), it reads its stdin until the end, which
    /// comes when this process drops the pipe or exits, then stops the
    /// server and removes the cluster's files.
    fn spawn_watchdog(&self) -> Result<(), String> {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = if self.as_postgres {
            "runuser -u postgres -- \"$1\" stop -D \"$2\" -m immediate -w -t 30"
        } else {
            "\"$1\" stop -D \"$2\" -m immediate -w -t 30"
        };
        let script = format!(
            "cat >/dev/null; if [ -f \"$2/postmaster.pid\" ]; then {stop} >/dev/null 2>&1; fi; rm -rf \"$3\""
        );
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("callboard-pg-watchdog")
            .arg(pg_ctl)
            .arg(self.data_dir())
            .arg(self.root.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting the watchdog: {e}"))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| "the watchdog has no stdin".to_owned())?;
        *self
            .watchdog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((child, stdin));
        Ok(())
    }

    /// Starts `postgres` and waits until it accepts connections.
    fn launch(&self) -> Result<(), String> {
        let mut server = self
            .server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if server.is_some() {
            return Err("the server is running already".into());
        }
        let log_path = self.root.path().join("server.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("opening the server log: {e}"))?;
        let log_start = log
            .metadata()
            .map(|m| m.len())
            .map_err(|e| format!("reading the server log: {e}"))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("opening the server log: {e}"))?;
        let mut child = self
            .server_command("postgres")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-c")
            .arg("listen_addresses=127.0.0.1")
            .arg("-c")
            .arg(format!("port={}", self.port))
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.socket_dir().display()
            ))
            .arg("-c")
            .arg(format!("max_connections={MAX_CONNECTIONS}"))
            .args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "shared_buffers=32MB",
                "-c",
                "log_min_messages=warning",
            ])
            .current_dir(self.root.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("starting postgres: {e}"))?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = self.log_since(log_start);
                return Err(format!(
                    "postgres exited during start-up ({status}); server log:\n{log}"
                ));
            }
            if self.is_ready() {
                *server = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = self.pg_ctl_stop("immediate");
                let _ = child.kill();
                let _ = child.wait();
                let log = self.log_since(log_start);
                return Err(format!(
                    "postgres did not accept connections within {}s; server log:\n{log}",
                    READY_TIMEOUT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_since(&self, offset: u64) -> String {
        let log = self.log();
        log.get(usize::try_from(offset).unwrap_or(0)..)
            .unwrap_or(&log)
            .to_owned()
    }

    /// Whether the server accepts TCP connections.
    fn is_ready(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .args([
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-t",
                "1",
            ])
            .arg("-p")
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn pg_ctl_stop(&self, mode: &str) -> Result<(), String> {
        let output = self
            .server_command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", mode, "-w", "-t", "60"])
            .current_dir(self.root.path())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running pg_ctl: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_ctl stop -m {mode} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop();
        // Closing the pipe wakes the watchdog, which removes the files too
        // (the temporary directory's own drop does it as well).
        let watchdog = self
            .watchdog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((mut child, stdin)) = watchdog {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

/// A port of 127.0.0.1 nobody listens on right now.
fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

fn running_as_root() -> Result<bool, String> {
    let output = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| format!("running id: {e}"))?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// Uid and gid of the `postgres` user.
fn postgres_ids() -> Result<(u32, u32), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let output = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .map_err(|e| format!("running id: {e}"))?;
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                format!(
                    "there is no postgres user to run the server as (id {flag} postgres: {})",
                    String::from_utf8_lossy(&output.stderr).trim()
                )
            })
    };
    Ok((id("-u")?, id("-g")?))
}

/// The folder holding `initdb`, `postgres`, `pg_ctl`, `pg_isready` and
/// `psql`: PostgreSQL 15's if installed, else the newest installed, else
/// `pg_config --bindir`'s.
fn find_binaries() -> Option<PathBuf> {
    let complete = |dir: &Path| {
        ["initdb", "postgres", "pg_ctl", "pg_isready", "psql"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    let preferred = PathBuf::from(format!("/usr/lib/postgresql/{MAJOR}/bin"));
    if complete(&preferred) {
        return Some(preferred);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            Some((major, e.path().join("bin")))
        })
        .filter(|(_, dir)| complete(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Some(dir);
    }
    let output = Command::new("pg_config").arg("--bindir").output().ok()?;
    let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    (output.status.success() && complete(&dir)).then_some(dir)
}

/// Finds the binaries, installing Debian's `postgresql` package when they
/// are missing. A file lock makes parallel test processes install once.
fn find_or_install_binaries() -> Result<PathBuf, String> {
    if let Some(dir) = find_binaries() {
        return Ok(dir);
    }
    let lock_path = std::env::temp_dir().join("callboard-postgresql-install.lock");
    let lock =
        File::create(&lock_path).map_err(|e| format!("creating {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
    // Another process may have installed it while this one waited.
    if let Some(dir) = find_binaries() {
        return Ok(dir);
    }
    if !running_as_root()? {
        return Err(
            "PostgreSQL's binaries are missing and only root can install them (apt-get install postgresql)"
                .into(),
        );
    }
    let mut transcript = String::new();
    for args in [
        &["update"][..],
        &["install", "-y", "--no-install-recommends", "postgresql"][..],
    ] {
        let output = Command::new("apt-get")
            // Another test process may be installing (Chromium, promtool).
            .args(["-o", "DPkg::Lock::Timeout=600"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running apt-get: {e}"))?;
        let _ = writeln!(
            transcript,
            "apt-get {}: {}\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        if !output.status.success() {
            return Err(format!("installing PostgreSQL failed:\n{transcript}"));
        }
    }
    drop(lock);
    find_binaries().ok_or_else(|| {
        format!("PostgreSQL was installed but its binaries were not found:\n{transcript}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_starts_serves_restarts_and_cleans_up() {
        let cluster = Cluster::start().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cluster.psql("postgres", "SELECT 1").unwrap(), "1");
        let url = cluster.create_database();
        let db = url.rsplit('/').next().unwrap().to_owned();
        assert!(url.starts_with(&format!(
            "postgres://postgres:{}@127.0.0.1:{}/",
            cluster.password(),
            cluster.port()
        )));
        cluster
            .psql(&db, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)")
            .unwrap();
        let max: u32 = cluster
            .psql("postgres", "SHOW max_connections")
            .unwrap()
            .parse()
            .unwrap();
        assert!(max >= 200, "max_connections {max}");
        assert_eq!(
            cluster.psql("postgres", "SHOW listen_addresses").unwrap(),
            "127.0.0.1"
        );
        // Password authentication over TCP: the right password works, a
        // wrong one is refused.
        let tcp = |password: &str| {
            Command::new(cluster.bin.join("psql"))
                .args(["-X", "-A", "-t", "-h", "127.0.0.1", "-U", "postgres", "-d"])
                .arg(&db)
                .arg("-p")
                .arg(cluster.port().to_string())
                .args(["-c", "SELECT x FROM t"])
                .env("PGPASSWORD", password)
                .stdin(Stdio::null())
                .output()
                .unwrap()
        };
        let ok = tcp(cluster.password());
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "42");
        assert!(!tcp("wrong").status.success());

        cluster.restart().unwrap();
        assert_eq!(cluster.psql(&db, "SELECT x FROM t").unwrap(), "42");
        cluster.stop().unwrap();
        assert!(cluster.psql(&db, "SELECT 1").is_err());
        cluster.start_again().unwrap();
        assert_eq!(cluster.psql(&db, "SELECT x FROM t").unwrap(), "42");

        let root = cluster.root.path().to_owned();
        let pid_file = cluster.data_dir().join("postmaster.pid");
        assert!(pid_file.exists());
        drop(cluster);
        assert!(!root.exists(), "the cluster's files outlived it");
    }

    #[test]
    fn shared_cluster_gives_fresh_databases() {
        let a = shared().create_database();
        let b = shared().create_database();
        assert_ne!(a, b);
        let db = b.rsplit('/').next().unwrap();
        assert_eq!(
            shared()
                .psql(
                    db,
                    "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                )
                .unwrap(),
            "0"
        );
    }
}
