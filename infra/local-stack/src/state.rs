//! The state directory and `stack.json`, the file through which other commands (`token`, `reset`, tests) find
//! a running stack.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

/// What `<state-dir>/stack.json` says about a running stack.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StackInfo {
    /// Base URL of the HTTP API.
    pub api_url: String,
    /// The AWS endpoint (`AWS_ENDPOINT_URL`) for SDKs and the CLI.
    pub aws_endpoint: String,
    /// moto's own URL (internal; prefer `aws_endpoint`).
    pub moto_url: String,
    pub region: String,
    pub user_pool_id: Option<String>,
    pub user_pool_client_id: Option<String>,
    /// The `iss` of the pool's tokens.
    pub issuer: Option<String>,
    pub state_dir: PathBuf,
    /// The `local-stack up` process.
    pub pid: u32,
}

impl StackInfo {
    /// The path of `stack.json` in `state_dir`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("stack.json")
    }

    /// Writes `stack.json` atomically (write then rename).
    pub fn write(&self) -> Result<()> {
        std::fs::create_dir_all(&self.state_dir)
            .with_context(|| format!("creating state dir {}", self.state_dir.display()))?;
        let path = StackInfo::path(&self.state_dir);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }

    /// Reads `stack.json` of a stack that says it is running; `None` if there is none or its process is gone.
    pub fn read_running(state_dir: &Path) -> Result<Option<StackInfo>> {
        let path = StackInfo::path(state_dir);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let info: StackInfo = serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?;
        Ok(process_alive(info.pid).then_some(info))
    }

    /// Removes `stack.json` if it still describes this process.
    pub fn remove_if_ours(state_dir: &Path) {
        let path = StackInfo::path(state_dir);
        let ours = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<StackInfo>(&b).ok())
            .is_some_and(|info| info.pid == std::process::id());
        if ours {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The file that marks a folder as a local stack's state dir, so that `reset` deletes only such a folder.
const MARKER: &str = ".local-stack-state";

/// Creates `state_dir` (if needed) and marks it as a state dir.
pub fn prepare(state_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(state_dir).with_context(|| format!("creating state dir {}", state_dir.display()))?;
    std::fs::write(state_dir.join(MARKER), b"").with_context(|| format!("marking state dir {}", state_dir.display()))
}

/// Deletes a stopped stack's state dir; refuses a folder `up` did not create.
pub fn delete(state_dir: &Path) -> Result<bool> {
    if !state_dir.exists() {
        return Ok(false);
    }
    if !state_dir.join(MARKER).is_file() {
        anyhow::bail!("{} is not a local stack state dir (no {MARKER}): not deleting it", state_dir.display());
    }
    std::fs::remove_dir_all(state_dir).with_context(|| format!("removing {}", state_dir.display()))?;
    Ok(true)
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_stack_json_is_written_should_read_back_while_the_process_lives() {
        let dir = std::env::temp_dir().join(format!("local-stack-state-{}", ulid::Ulid::new()));
        let info = StackInfo {
            api_url: "http://127.0.0.1:3000".into(),
            aws_endpoint: "http://127.0.0.1:4566".into(),
            moto_url: "http://127.0.0.1:5000".into(),
            region: "us-east-1".into(),
            user_pool_id: Some("us-east-1_abc".into()),
            user_pool_client_id: Some("client".into()),
            issuer: Some("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc".into()),
            state_dir: dir.clone(),
            pid: std::process::id(),
        };
        info.write().expect("write");
        assert_eq!(StackInfo::read_running(&dir).expect("read"), Some(info.clone()));
        let gone = StackInfo { pid: u32::MAX, ..info };
        gone.write().expect("write");
        assert_eq!(StackInfo::read_running(&dir).expect("read"), None);
        StackInfo::remove_if_ours(&dir);
        assert!(StackInfo::path(&dir).exists(), "not ours: kept");
        std::fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn when_a_folder_was_not_prepared_should_refuse_to_delete_it() {
        let dir = std::env::temp_dir().join(format!("local-stack-state-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        assert!(delete(&dir).is_err());
        assert!(dir.exists());
        prepare(&dir).expect("prepare");
        assert!(delete(&dir).expect("delete"));
        assert!(!dir.exists());
        assert!(!delete(&dir).expect("nothing to delete"));
    }
}
