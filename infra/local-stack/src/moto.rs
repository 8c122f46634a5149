//! The AWS emulator: installs moto into a project-local venv once, runs it from `infra/moto_launcher.py`
//! (DynamoDB requests serialized) on a loopback port, and drives its admin API (`/moto-api/...`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The project's files the emulator needs, found from the project root.
#[derive(Debug, Clone)]
pub struct MotoFiles {
    /// `.local/venv`.
    pub venv: PathBuf,
    /// `infra/requirements-moto.txt`.
    pub requirements: PathBuf,
    /// `infra/moto_launcher.py`.
    pub launcher: PathBuf,
}

impl MotoFiles {
    /// The files under the project root `root`.
    pub fn under(root: &Path) -> MotoFiles {
        MotoFiles {
            venv: root.join(".local/venv"),
            requirements: root.join("infra/requirements-moto.txt"),
            launcher: root.join("infra/moto_launcher.py"),
        }
    }

    fn python(&self) -> PathBuf {
        self.venv.join("bin/python")
    }
}

/// Makes sure `.local/venv` holds the pinned moto; installs it on first use or when the requirements change.
/// Returns the venv's python. Holds a file lock so that parallel starts install once.
pub async fn ensure_venv(files: &MotoFiles) -> Result<PathBuf> {
    let requirements =
        std::fs::read(&files.requirements).with_context(|| format!("reading {}", files.requirements.display()))?;
    let want = hex::encode(Sha256::digest(&requirements));
    let stamp = files.venv.join(".requirements.sha256");
    let python = files.python();
    let fresh = |stamp: &Path| std::fs::read_to_string(stamp).is_ok_and(|s| s.trim() == want) && python.exists();
    if fresh(&stamp) {
        return Ok(python);
    }
    let parent = files.venv.parent().ok_or_else(|| anyhow!("venv path has no parent"))?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let lock_path = parent.join("venv.lock");
    let lock = tokio::task::spawn_blocking(move || lock_exclusive(&lock_path)).await??;
    if fresh(&stamp) {
        drop(lock);
        return Ok(python);
    }

    let system_python = which_python3()?;
    eprintln!("installing the AWS emulator (moto) into {} (first run only)", files.venv.display());
    if files.venv.exists() {
        std::fs::remove_dir_all(&files.venv).with_context(|| format!("removing stale {}", files.venv.display()))?;
    }
    run_quiet(Command::new(&system_python).arg("-m").arg("venv").arg(&files.venv))
        .await
        .context("python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)")?;
    run_quiet(
        Command::new(&python)
            .args(["-m", "pip", "install", "--disable-pip-version-check", "--quiet", "-r"])
            .arg(&files.requirements),
    )
    .await
    .with_context(|| format!("pip install -r {} failed", files.requirements.display()))?;
    std::fs::write(&stamp, &want)?;
    drop(lock);
    Ok(python)
}

fn which_python3() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join("python3")).find(|p| p.is_file()).ok_or_else(|| {
        anyhow!("python3 not found on PATH: the local stack runs the AWS emulator (moto) with Python 3.9 or newer")
    })
}

async fn run_quiet(cmd: &mut Command) -> Result<()> {
    let out = cmd.stdin(Stdio::null()).output().await.context("could not run")?;
    if !out.status.success() {
        bail!("{}\n{}{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// An exclusive `flock` on `path`, released on drop.
struct FileLock(std::fs::File);

fn lock_exclusive(path: &Path) -> Result<FileLock> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("locking {}", path.display()));
    }
    Ok(FileLock(file))
}

impl Drop for FileLock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: unlocking the descriptor this value owns.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// A running moto server.
pub struct Moto {
    child: Child,
    /// The port moto listens on (loopback).
    pub port: u16,
    http: reqwest::Client,
}

impl Moto {
    /// Starts the launcher with `python` on `port` (0: any free port). moto gets `MOTO_PORT=<aws_port>` so
    /// that its Step Functions interpreter calls the local AWS endpoint. Its stderr goes to `log`.
    pub async fn start(python: &Path, files: &MotoFiles, port: u16, aws_port: u16, log: &Path) -> Result<Moto> {
        let log_file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = Command::new(python);
        cmd.arg(&files.launcher)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .env("MOTO_PORT", aws_port.to_string())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        // Its own process group: a terminal's Ctrl-C reaches only the stack, which then stops it in order.
        child_guard::die_with_parent(cmd.as_std_mut(), child_guard::Group::Own);
        let mut child = cmd.spawn().with_context(|| format!("starting {}", files.launcher.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("moto stdout not captured"))?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .map_err(|_| anyhow!("moto did not start within 60 s; see {}", log.display()))??;
        let Some(first) = first else {
            let status = child.wait().await?;
            bail!("moto exited during start ({status}); see {}", log.display());
        };
        #[derive(serde::Deserialize)]
        struct Ready {
            port: u16,
        }
        let ready: Ready =
            serde_json::from_str(&first).with_context(|| format!("unexpected first line from moto: {first}"))?;
        // Keep draining stdout so the launcher never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let http = reqwest::Client::builder().no_proxy().build()?;
        Ok(Moto { child, port: ready.port, http })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Switches on Step Functions execution (must precede CreateStateMachine).
    pub async fn configure(&self) -> Result<()> {
        let body = serde_json::json!({"stepfunctions": {"execute_state_machine": true}});
        self.admin("config", self.http.post(format!("{}/moto-api/config", self.url())).json(&body)).await
    }

    /// Drops every resource in the emulator.
    pub async fn reset(&self) -> Result<()> {
        self.admin("reset", self.http.post(format!("{}/moto-api/reset", self.url()))).await
    }

    /// Seeds moto's random generator: the ids it generates next (user `sub`s, pool ids) follow from `seed`.
    pub async fn seed_random(&self, seed: u64) -> Result<()> {
        self.admin("seed", self.http.post(format!("{}/moto-api/seed?a={seed}", self.url()))).await
    }

    async fn admin(&self, what: &str, req: reqwest::RequestBuilder) -> Result<()> {
        let resp = req.send().await.with_context(|| format!("moto {what}"))?;
        if !resp.status().is_success() {
            bail!("moto {what}: HTTP {}: {}", resp.status(), resp.text().await.unwrap_or_default());
        }
        Ok(())
    }

    /// Stops moto and waits for it to exit.
    pub async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            if tokio::time::timeout(Duration::from_secs(3), self.child.wait()).await.is_ok() {
                return;
            }
        }
        let _ = self.child.kill().await;
    }
}
