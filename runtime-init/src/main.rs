//! corral-init: the in-namespace init of a corral container.
//!
//! The runtime execs this binary (from a sealed memfd) inside the new
//! namespaces with `argv = ["corral-init", "<init socket fd>"]`, an empty
//! environment and the workload's stdio on fds 0-2. It reads an `InitSpec`
//! from the socket, sets the container up one step at a time (one module
//! per `protocol::Step`, called in order below), reports `Ready`, waits for
//! the start signal and execs the workload. Any failure is sent as an
//! `InitError` naming its step, and the init exits. It never writes to fds
//! 0-2, which belong to the workload.

// No `std` runtime start-up: the init needs none of it (main-thread stack
// guard from `/proc/self/maps`, a SIGSEGV alternate stack, checks of fds
// 0-2, which the runtime always sets) and it ran on every container start.
// `std::env::args_os` still works: glibc hands argv to std's initializer.
#![cfg_attr(not(test), no_main)]

mod capabilities;
mod cgroup_join;
mod channel;
mod close_fds;
mod console;
mod copy_up;
mod cpu_affinity;
mod cwd;
mod dev;
mod error;
mod exec;
mod exec_mode;
mod hooks;
mod hostname;
mod in_root;
mod io_priority;
mod join;
mod masked_paths;
mod memory_policy;
mod mounts;
mod network;
mod no_new_privs;
mod oom_score_adj;
mod personality;
mod pivot_root;
mod procfs;
mod readonly_paths;
mod resident;
mod resolve;
mod rlimits;
mod rootfs;
mod scheduler;
mod seccomp;
mod spawn;
mod sys;
mod sysctl;
mod user;
mod wait_start;

use std::convert::Infallible;

use corral_protocol::{InitChannel, Request};

use crate::error::{Error, Result};

/// Test builds have no C `main` of ours (the harness brings its own):
/// this keeps the init's code live for the dead-code lint there.
#[cfg(test)]
#[allow(dead_code)]
fn test_entry() -> ! {
    start()
}

/// Everything the init does; called by the C `main` in `sys`.
fn start() -> ! {
    sys::reset_inherited_ignored_signals();
    // sync 0 ends here: adopt the init socket (fd 3) the runtime placed.
    let channel = channel::connect();
    if std::env::args_os()
        .nth(2)
        .is_some_and(|mode| mode == "resident")
    {
        // Returns in each cloned child, whose fd 3 is then its own socket.
        resident::serve(channel);
    }
    let Err(error) = run(channel);
    channel::fail(channel, error)
}

/// A message that has no place where it came.
fn unexpected(kind: corral_protocol::Kind) -> Error {
    Error::Protocol {
        op: "receive spec",
        source: corral_protocol::Error::Unexpected { kind },
    }
}

fn run(channel: &InitChannel) -> Result<Infallible> {
    // sync 1: the spec, and the FIFO's O_PATH fd in FIFO mode; or, in exec
    // mode, the exec request (exec sync 1), which goes its own way.
    let receive = || {
        channel.recv_request().map_err(|source| Error::Protocol {
            op: "receive spec",
            source,
        })
    };
    let mut request = receive()?;
    if let Request::JoinCgroup(join, tasks) = request {
        // sync 0b: cloned before its cgroup was made; placed before
        // anything else, then the spec.
        cgroup_join::join(&tasks, join.unshare_namespace)?;
        drop(tasks);
        request = receive()?;
    }
    let (spec, fifo) = match request {
        Request::Create(spec, fifo) => (*spec, fifo),
        Request::Exec(spec, target) => return exec_mode::run(channel, &spec, target),
        // Only a resident init is asked to spawn (see `resident`), and a
        // cgroup is joined once, first.
        Request::Spawn(..) => return Err(unexpected(corral_protocol::Kind::Spawn)),
        Request::JoinCgroup(..) => return Err(unexpected(corral_protocol::Kind::JoinCgroup)),
    };
    let process = &spec.process;
    let caps = process.capabilities.as_ref();

    let root = rootfs::prepare(&spec)?;
    if spec.mounts.iter().any(|m| m.detached) {
        // The runtime makes some detached trees only now, so that their
        // mounts are listed after the container's root.
        channel
            .send_rootfs_ready()
            .map_err(|source| Error::Protocol {
                op: "report the rootfs bound",
                source,
            })?;
    }
    // Between sync 1 and 2: detached mounts (mount_fd) as their ops come.
    mounts::apply(channel, &root, &spec.mounts)?;
    dev::create(&root, &spec.devices, &spec.symlinks)?;
    if process.terminal {
        // Between sync 1 and 2: the pty master goes to the parent (Console).
        console::setup(channel, &root, process)?;
    }
    if spec.loopback_up {
        network::loopback_up()?;
    }
    // sync 1b: prestart/createRuntime in the parent, then createContainer.
    hooks::create(channel, spec.hooks.as_ref())?;
    pivot_root::enter(root, &spec)?;
    hostname::set(spec.hostname.as_deref(), spec.domainname.as_deref())?;
    // Before the read-only paths: the default OCI spec makes /proc/sys
    // read-only (runc writes sysctls first too).
    sysctl::apply(&spec.sysctls)?;
    masked_paths::apply(&spec.masked_paths)?;
    readonly_paths::apply(&spec.readonly_paths, spec.readonly_root)?;
    rlimits::apply(&process.rlimits)?;
    oom_score_adj::set(process.oom_score_adj)?;
    io_priority::set(process.io_priority)?;
    scheduler::set(process.scheduler.as_ref())?;
    // Before seccomp, which may deny set_mempolicy; the policy then also
    // applies to the init's last allocations, which is harmless.
    memory_policy::set(spec.memory_policy.as_ref())?;
    cwd::enter(process.cwd.as_path())?;
    capabilities::drop_bounding(caps)?;
    user::switch(process)?;
    let seccomp = spec.seccomp.as_ref();
    let seccomp_early = seccomp::early(seccomp, process.no_new_privileges);
    if seccomp_early {
        // Needs CAP_SYS_ADMIN (without noNewPrivileges), which the next
        // step may drop; a listener fd must reach the runtime before Ready.
        seccomp::load(channel, seccomp)?;
    }
    capabilities::apply(caps)?;
    no_new_privs::set(process.no_new_privileges)?;
    personality::set(spec.personality)?;
    let mut command = resolve::run(process)?;
    close_fds::run(channel, fifo.as_ref())?;
    // sync 2: Ready; then sync 4: Start, or the FIFO opened by `corral start`.
    if let Some(takeover) = wait_start::run(channel, spec.start_via, fifo)? {
        // A warm pool's container: the job's own argv and env.
        command = resolve::run(&resolve::overridden(process, takeover))?;
    }
    hooks::start(spec.hooks.as_ref())?;
    if !seccomp_early {
        // Last before execve: no init syscall meets the filter.
        seccomp::load(channel, seccomp)?;
    }
    // sync 5: success closes the close-on-exec socket (EOF in the parent);
    // failure is reported as Error{step: exec}.
    Err(exec::exec(&command))
}
