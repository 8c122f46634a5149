//! Child processes that cannot outlive the process that started them (Linux `PR_SET_PDEATHSIG`): a killed
//! local stack or test run leaves no function, emulator or stack behind. The one `unsafe` block for it.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Where the child runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// In the parent's process group (a terminal's Ctrl-C reaches both).
    Parent,
    /// In a process group of its own, so a terminal's Ctrl-C reaches only the parent, which stops it in order.
    Own,
}

/// Arranges for the child `cmd` starts to get SIGKILL when the starting thread's process dies (and not to run
/// at all if that already happened). For a `tokio::process::Command`, pass `cmd.as_std_mut()`.
pub fn die_with_parent(cmd: &mut Command, group: Group) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec and calls only async-signal-safe functions
    // (prctl, getppid, _exit, setpgid); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            if group == Group::Own && libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guarded_child_runs_in_the_group_asked_for() {
        let own_group = |group: Group| -> bool {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", "ps -o pgid= -p $$"]);
            die_with_parent(&mut cmd, group);
            let out = cmd.output().expect("run sh");
            assert!(out.status.success());
            let pgid: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("a pgid");
            pgid != unsafe { libc::getpgrp() }
        };
        assert!(own_group(Group::Own));
        assert!(!own_group(Group::Parent));
    }
}
