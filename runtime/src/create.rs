//! Creating a container: the parent's half of the start-up sequence up to
//! `Ready` (sync points 0–3 of `docs/protocol.md`): plan, cgroup, clone3,
//! user namespace maps, the handshake, and undoing all of it on failure.
//! The handle it returns is `container::Container`.

use std::os::fd::{AsFd, OwnedFd};

use corral_protocol::{StartVia, ToParent};
use tracing::{debug, info};

use crate::cgroups::CgroupPaths;
use crate::cgroups::tree::Entry;
use crate::channel::InitSocket;
use crate::console::Console;
use crate::container::{Container, emit, message_kind, peer_gone, protocol_err};
use crate::error::{Error, Result};
use crate::hooks::{HookContext, Kind as HookKind};
use crate::pidfd::PidFd;
use crate::runtime::{CreateOptions, Runtime};
use crate::state::{StoredState, proc_stat, rfc3339_now};
use crate::stdio;
use crate::{Spec, plan};

mod clone;

use clone::{NsPlan, clone_init};

/// Creates a container: the parent's half of sync points 1–3.
#[tracing::instrument(skip_all, fields(container_id = %id))]
pub(crate) async fn create(
    runtime: Runtime,
    id: String,
    spec: Spec,
    opts: CreateOptions,
) -> Result<Container> {
    crate::state::validate_id(&id)?;
    let mut plan = plan::plan(&id, &spec, runtime.layout(), opts.start_via)?;
    let hooks = HookContext::of(&spec).map(Box::new);
    plan.init.no_pivot = opts.no_pivot;
    if let Some((soft, hard)) = runtime.inherited_nofile() {
        let rlimits = &mut plan.init.process.rlimits;
        if !rlimits.iter().any(|r| r.resource == libc::RLIMIT_NOFILE) {
            rlimits.push(corral_protocol::Rlimit {
                resource: libc::RLIMIT_NOFILE,
                soft,
                hard,
            });
        }
    }
    let cgroup = crate::cgroups::prepare(runtime.cgroups(), &id, &spec)?;
    let rootfs = spec.rootfs()?;
    check_rootfs(&rootfs)?;
    let state_dir = runtime.state_dir_opt().cloned();
    if let Some(dir) = &state_dir {
        dir.create(&id)?;
    }
    let mut guard = Abort {
        process: None,
        state: state_dir.clone().map(|d| (d, id.clone())),
        cgroup: None,
        net: None,
    };
    let made = match spawn_and_handshake(
        &runtime,
        &id,
        &spec,
        &mut plan,
        cgroup,
        opts,
        &mut guard,
        hooks.as_deref(),
    )
    .await
    {
        Ok(made) => made,
        Err(e) => {
            let pid = guard
                .process
                .as_ref()
                .map(|p| p.pid().as_raw_nonzero().get());
            guard.abort().await;
            if let (Some(ctx), Some(pid)) = (&hooks, pid) {
                // The runtime spec's lifecycle goes on at delete: poststop.
                ctx.run_logged(HookKind::Poststop, &id, "stopped", pid)
                    .await;
            }
            return Err(e);
        }
    };
    let process = guard
        .process
        .take()
        .expect("a spawned child is in the guard");
    let mut container = made.into_container(runtime, id, process);
    container.cgroup = guard.cgroup.take();
    container.hooks = hooks;
    container.seccomp = plan.init.seccomp.take().map(|program| {
        let listener = ListenerState::of(&spec);
        Box::new(crate::seccomp_notify::ExecSeccomp {
            stored: crate::StoredSeccomp {
                program,
                listener_path: plan.seccomp_listener.as_ref().map(|l| l.path.clone()),
                listener_metadata: plan
                    .seccomp_listener
                    .as_ref()
                    .map(|l| l.metadata.clone())
                    .unwrap_or_default(),
            },
            bundle: listener.bundle,
            annotations: listener.annotations,
        })
    });
    if let Some(dir) = state_dir {
        let stored = match stored_state(&container, &spec, rootfs) {
            Ok(stored) => stored,
            Err(e) => {
                guard.process = container.process.take();
                guard.cgroup = container.cgroup.take();
                guard.abort().await;
                return Err(e);
            }
        };
        if let Err(e) = dir.write(&stored) {
            guard.process = container.process.take();
            guard.cgroup = container.cgroup.take();
            guard.abort().await;
            return Err(e);
        }
        container.stored = Some(stored);
    }
    guard.state = None;
    // The moved devices now belong to the container (see `netdev`).
    guard.net = None;
    // sync 3: Created. From here the handle, not the guard, owns the child.
    info!(pid = container.pid(), "created");
    Ok(container)
}

/// Undoes a half-made container: kills and reaps the child, removes the
/// state dir. Explicitly on error paths ([`Abort::abort`]), from `Drop`
/// when the create future is cancelled.
struct Abort {
    process: Option<PidFd>,
    state: Option<(crate::state::StateDir, String)>,
    /// Removed after the process is gone.
    cgroup: Option<CgroupPaths>,
    /// `linux.netDevices` moved in: moved back while the child (and so its
    /// network namespace) still lives.
    net: Option<crate::netdev::Moved>,
}

impl Abort {
    async fn abort(&mut self) {
        if let Some(mut net) = self.net.take() {
            let _ = tokio::task::spawn_blocking(move || net.move_back_blocking()).await;
        }
        if let Some(process) = self.process.take() {
            let _ = process.signal(libc::SIGKILL);
            let _ = process.wait().await;
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = crate::cgroups::tree::remove(&cg).await;
        }
        if let Some((dir, id)) = self.state.take() {
            let _ = dir.remove(&id);
        }
    }
}

impl Drop for Abort {
    fn drop(&mut self) {
        if let Some(mut net) = self.net.take() {
            // Cancelled create: a few quick rtnetlink calls, before the kill.
            net.move_back_blocking();
        }
        let cgroup = self.cgroup.take();
        match self.process.take() {
            Some(process) => crate::reaper::kill_and_reap(process, cgroup),
            None => {
                if let Some(cg) = cgroup {
                    crate::cgroups::tree::remove_blocking(&cg);
                }
            }
        }
        if let Some((dir, id)) = self.state.take() {
            let _ = dir.remove(&id);
        }
    }
}

fn check_rootfs(rootfs: &std::path::Path) -> Result<()> {
    match std::fs::metadata(rootfs) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::Rootfs {
            path: rootfs.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::NotADirectory),
        }),
        Err(source) => Err(Error::Rootfs {
            path: rootfs.to_path_buf(),
            source,
        }),
    }
}

fn stored_state(c: &Container, spec: &Spec, rootfs: std::path::PathBuf) -> Result<StoredState> {
    let (_, start_time) =
        proc_stat(c.pid()).map_err(|e| Error::sys(format!("read /proc/{}/stat", c.pid()), e))?;
    Ok(StoredState {
        id: c.id.clone(),
        pid: c.pid(),
        start_time,
        bundle: spec.bundle().to_path_buf(),
        rootfs,
        created: rfc3339_now(),
        started: false,
        cgroup: c.cgroup.clone(),
        annotations: spec
            .oci()
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        hooks: spec.oci().hooks().clone(),
        seccomp: c.seccomp.as_ref().map(|s| s.stored.clone()),
    })
}

/// A child that reported `Ready`.
struct Made {
    socket: InitSocket,
    start_via: StartVia,
    stdio: [Option<stdio::Parent>; 3],
    console: Option<OwnedFd>,
}

impl Made {
    fn into_container(self, runtime: Runtime, id: String, process: PidFd) -> Container {
        let mut c = Container {
            id,
            runtime,
            process: Some(process),
            socket: Some(self.socket),
            start_via: self.start_via,
            started: false,
            stdin: None,
            stdout: None,
            stderr: None,
            console: self.console.map(|fd| {
                Console::new(fd).expect("register a pty master with the running reactor")
            }),
            copies: Vec::new(),
            stored: None,
            cgroup: None,
            hooks: None,
            seccomp: None,
            refill: None,
        };
        for (index, parent) in self.stdio.into_iter().enumerate() {
            let Some(parent) = parent else { continue };
            // Registration only fails without a reactor, and we are inside one.
            let attached = stdio::attach(parent, c.runtime.stdio_engine())
                .expect("register a pipe with the running reactor");
            match (attached, index) {
                (stdio::Attached::Stdin(w), _) => c.stdin = Some(w),
                (stdio::Attached::Output(r), 1) => c.stdout = Some(r),
                (stdio::Attached::Output(r), _) => c.stderr = Some(r),
                (stdio::Attached::Copy(done), _) => c.copies.push(done),
            }
        }
        c
    }
}

/// Makes the container's cgroup into `made` (the guard's, which removes
/// it on failure) and
/// finishes the parts of `plan` that name it.
fn make_cgroup(
    runtime: &Runtime,
    plan: &mut plan::Plan,
    made: &mut Option<CgroupPaths>,
    prepared: Option<crate::cgroups::Prepared>,
) -> Result<()> {
    if let Some(prepared) = prepared {
        *made = crate::cgroups::make(prepared, runtime.cgroup_spares())?;
        debug!("cgroup made");
    }
    if let Some(paths) = made {
        plan::bind_container_cgroup(&mut plan.init.mounts, runtime.layout(), paths);
    }
    let new_userns = plan.clone_flags & libc::CLONE_NEWUSER as u64 != 0;
    if !plan.cgroup_v1_mounts.is_empty()
        && !new_userns
        && !plan.joins.joined_user
        && crate::cgroup_tree::supported()
    {
        crate::cgroup_tree::collapse(plan);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn spawn_and_handshake(
    runtime: &Runtime,
    id: &str,
    spec: &Spec,
    plan: &mut plan::Plan,
    cgroup: Option<crate::cgroups::Prepared>,
    opts: CreateOptions,
    guard: &mut Abort,
    hooks: Option<&HookContext>,
) -> Result<Made> {
    let opened = crate::namespaces::open(&plan.joins)?;
    // A v1 cgroup for an init that execs corral-init is made while that
    // init starts (it joins at sync 0b): its mkdirs then overlap the
    // exec. A v2 one must exist for CLONE_INTO_CGROUP; a resident init
    // clones without an exec to overlap; a child that joins namespaces or
    // waits for user namespace maps keeps the placement before exec. What
    // the init touches before it joins (its exec and libc start-up, about
    // 100 KiB) stays charged to our memory cgroup until the workload's
    // exec frees it, so only a container started right away (socket
    // mode) takes this path, not one left created (FIFO mode).
    let cgroup_later = cgroup.as_ref().is_some_and(|p| p.is_v1())
        && opts.start_via == StartVia::Socket
        && runtime.resident().is_none()
        && opened.join().is_empty()
        && opened.pid().is_none()
        && plan.id_maps.is_none()
        && !plan.joins.joined_user
        && plan.joins.new_time.is_none();
    let (cgroup_now, cgroup_later) = match cgroup_later {
        true => (None, cgroup),
        false => (cgroup, None),
    };
    if cgroup_later.is_none() {
        make_cgroup(runtime, plan, &mut guard.cgroup, cgroup_now)?;
    }
    let clone_flags = plan.clone_flags;
    let newcgroup = libc::CLONE_NEWCGROUP as u64;
    // A late cgroup's namespace is unshared by the init once it has joined.
    let clone_now = match cgroup_later {
        Some(_) => clone_flags & !newcgroup,
        None => clone_flags,
    };
    let (id_maps, joins) = (plan.id_maps.as_ref(), &plan.joins);
    let CreateOptions {
        stdio: [s0, s1, s2],
        detach,
        start_via,
        ..
    } = opts;
    let prepared = [
        stdio::prepare(s0, 0)?,
        stdio::prepare(s1, 1)?,
        stdio::prepare(s2, 2)?,
    ];
    let fifo = match start_via {
        StartVia::Fifo => Some(runtime.state_dir()?.make_fifo(id)?),
        StartVia::Socket => None,
    };
    let (parent_end, child_end) = corral_protocol::socketpair().map_err(|e| protocol_err(id, e))?;
    // With a new user namespace the child waits on this pipe for its maps.
    let maps_pipe = match id_maps {
        Some(_) => Some(
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .map_err(|e| Error::sys("pipe2", e))?,
        ),
        None => None,
    };
    let wait_fd = maps_pipe.as_ref().map(|(r, _)| r.as_fd());
    let join = opened.join();
    let ns = NsPlan {
        wait_for_maps: wait_fd,
        join: &join,
        pid: opened.pid(),
        joined_user: joins.joined_user,
        new_time: joins.new_time.as_deref().map(str::as_bytes),
    };
    let entry = guard
        .cgroup
        .as_ref()
        .map(crate::cgroups::tree::open_entry)
        .transpose()?;
    // sync 0: clone3 into the namespaces (and the cgroup); the child execs
    // corral-init.
    let spawned = clone_init(
        runtime,
        &prepared,
        child_end.as_fd(),
        clone_now,
        &ns,
        detach,
        entry.as_ref(),
    )
    .await?;
    drop(child_end);
    drop(entry);
    let [p0, p1, p2] = prepared;
    let stdio = [p0.parent, p1.parent, p2.parent];
    debug!(pid = spawned.pid.as_raw_nonzero().get(), "cloned");
    // An init in a pid namespace of its own (or the host's) is reaped
    // late; one that joined another container's must be reaped at once,
    // or its zombie would hold up that container's exit (see pidfd.rs).
    let registered = if joins.join_pid.is_none() {
        PidFd::new_reaped_late(spawned.pidfd, spawned.pid)
    } else {
        PidFd::new(spawned.pidfd, spawned.pid)
    };
    let process = guard
        .process
        .insert(registered.map_err(|e| Error::sys("register pidfd", e))?);
    if clone_flags & libc::CLONE_NEWNS as u64 != 0 && !detach {
        if let Some(hold) = runtime.mount_ns_holds().take(process.as_fd(), spawned.pid) {
            process.hold_mount_ns(hold);
        }
    }
    let socket = InitSocket::new(parent_end).map_err(|e| Error::sys("register init socket", e))?;
    if let Some(prepared) = cgroup_later {
        // sync 0b: the cgroup, made while the init starts; it joins
        // before it reads its spec. No cgroup (one not required and not
        // permitted) still sends the namespace request. Before the
        // idmapped trees: the plan's op indices change here.
        if let Err(e) = make_cgroup(runtime, plan, &mut guard.cgroup, Some(prepared)) {
            // As on the other paths, a cgroup that cannot be made fails
            // the create before the container's lifecycle begins: the
            // init, which has read nothing yet, goes without poststop.
            if let Some(process) = guard.process.take() {
                let _ = process.signal(libc::SIGKILL);
                let _ = process.wait().await;
            }
            return Err(e);
        }
        let tasks = match guard.cgroup.as_ref().map(crate::cgroups::tree::open_entry) {
            Some(entry) => match entry? {
                Entry::Tasks(fds) => fds,
                Entry::Dir(_) => {
                    return Err(Error::sys(
                        "join the container's cgroup",
                        std::io::Error::other("a v1 cgroup has no tasks files"),
                    ));
                }
            },
            None => Vec::new(),
        };
        let tasks: Vec<_> = tasks.iter().map(|fd| fd.as_fd()).collect();
        let unshare = clone_flags & newcgroup != 0;
        let sent = socket.send_join_cgroup(&tasks, unshare).await;
        if let Err(e) = sent {
            if !peer_gone(&e) {
                return Err(protocol_err(id, e));
            }
        }
    }
    // The container's user namespace, for idmapped mounts that take its
    // mappings: a joined one's file, or the new one of the waiting child.
    let mut container_userns = None;
    if let (Some(maps), Some((read, write))) = (plan.id_maps.as_ref(), maps_pipe) {
        // sync 0, user namespace: maps first, then release the child. On
        // error the write end closes, the child reads EOF and exits, and
        // the guard reaps it.
        drop(read);
        crate::userns::write_id_maps(spawned.pid, maps)?;
        if !plan.idmapped.is_empty() {
            container_userns = Some(open_userns(spawned.pid)?);
        }
        rustix::io::write(&write, &[1]).map_err(|e| Error::sys("release the cloned child", e))?;
    }
    if !plan.net_devices.is_empty() {
        // Before the init is sent its spec: the workload finds them in place.
        let pid = spawned.pid.as_raw_nonzero().get();
        let devices = plan.net_devices.clone();
        guard.net =
            tokio::task::spawn_blocking(move || crate::netdev::move_in_blocking(pid, &devices))
                .await
                .map_err(|e| Error::sys("move network devices", std::io::Error::other(e)))??;
    }
    let joined_userns = join
        .iter()
        .find(|(_, t)| *t == libc::CLONE_NEWUSER)
        .map(|(fd, _)| *fd);
    let userns = container_userns
        .as_ref()
        .map(|fd| fd.as_fd())
        .or(joined_userns);
    // Sync 1a's fds, made while the init starts.
    let detached = crate::idmap::make(&plan.idmapped, userns).await?;
    drop(container_userns);
    let init = &plan.init;
    // The hooks' state JSON names the pid, known only now.
    let with_states;
    let init = match (hooks, &init.hooks) {
        (Some(ctx), Some(init_hooks)) => {
            let mut init_hooks = init_hooks.clone();
            let pid = spawned.pid.as_raw_nonzero().get();
            crate::hooks::fill_states(&mut init_hooks, ctx, id, pid);
            with_states = corral_protocol::InitSpec {
                hooks: Some(init_hooks),
                ..init.clone()
            };
            &with_states
        }
        _ => init,
    };
    let fifo = fifo.as_ref().map(|f| f.as_fd());
    let listener = plan
        .seccomp_listener
        .as_ref()
        .map(|l| (l, ListenerState::of(spec)));
    let out = Outgoing {
        init,
        fifo,
        detached: &detached,
        trees: &plan.cgroup_trees,
    };
    let console = handshake(id, &socket, process, out, hooks, listener).await?;
    Ok(Made {
        socket,
        start_via,
        stdio,
        console,
    })
}

/// `/proc/<pid>/ns/user` of the cloned child.
fn open_userns(pid: rustix::process::Pid) -> Result<OwnedFd> {
    let path = format!("/proc/{}/ns/user", pid.as_raw_nonzero());
    rustix::fs::open(
        path.as_str(),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::sys(format!("open {path:?}"), e))
}

/// The bundle and annotations for the seccomp agent's state JSON.
struct ListenerState {
    bundle: std::path::PathBuf,
    annotations: std::collections::BTreeMap<String, String>,
}

impl ListenerState {
    fn of(spec: &Spec) -> Self {
        ListenerState {
            bundle: spec.bundle().to_path_buf(),
            annotations: spec
                .oci()
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        }
    }
}

/// What sync 1 and 1a send the init: its spec, the FIFO's O_PATH fd in
/// FIFO mode, and the detached mounts.
struct Outgoing<'a> {
    init: &'a corral_protocol::InitSpec,
    fifo: Option<std::os::fd::BorrowedFd<'a>>,
    detached: &'a [crate::idmap::Detached],
    /// v1 `cgroup` mounts the runtime builds once the spec has gone, while
    /// the init works (`cgroup_tree`).
    trees: &'a [crate::cgroup_tree::TreeRequest],
}

/// Sends `detached` mount fds in op order: the init takes each as it
/// reaches its op.
async fn send_detached<'a>(
    socket: &InitSocket,
    detached: impl Iterator<Item = &'a crate::idmap::Detached>,
) -> std::result::Result<(), corral_protocol::Error> {
    let mut detached: Vec<_> = detached.collect();
    detached.sort_by_key(|d| d.op);
    for d in detached {
        socket.send_mount_fd(d.op, d.fd.as_fd()).await?;
    }
    Ok(())
}

/// Sync 1–3: send the spec, relay logs, the console and the seccomp
/// listener fd, until `Ready`.
async fn handshake(
    id: &str,
    socket: &InitSocket,
    process: &PidFd,
    out: Outgoing<'_>,
    hooks: Option<&HookContext>,
    listener: Option<(&plan::seccomp::Listener, ListenerState)>,
) -> Result<Option<OwnedFd>> {
    // sync 1: the spec (+ the FIFO's O_PATH fd in FIFO mode); sync 1a: the
    // detached mounts, which the init takes as it reaches their ops. With
    // cgroup trees to build, all of them wait for `rootfs_ready`.
    let sent = socket.send_spec(out.init, out.fifo).await;
    let sent = match sent {
        Ok(()) if out.trees.is_empty() => send_detached(socket, out.detached.iter()).await,
        other => other,
    };
    if let Err(e) = sent {
        if !peer_gone(&e) {
            return Err(protocol_err(id, e));
        }
    }
    let mut trees = out.trees;
    let mut console = None;
    loop {
        match socket.recv().await {
            // sync 2: setup done; the init waits for the start signal.
            Ok((ToParent::Ready, _)) => return Ok(console),
            // sync 1a': the rootfs is bound. Built now, the cgroup trees'
            // mounts come after the container's root in its mount table.
            Ok((ToParent::RootfsReady, _)) => {
                let built = std::mem::take(&mut trees)
                    .iter()
                    .map(crate::cgroup_tree::build)
                    .collect::<Result<Vec<_>>>()?;
                if !built.is_empty() {
                    let sent = send_detached(socket, out.detached.iter().chain(&built)).await;
                    if let Err(e) = sent {
                        if !peer_gone(&e) {
                            return Err(protocol_err(id, e));
                        }
                    }
                }
            }
            Ok((ToParent::Log(record), _)) => emit(&record),
            // Between sync 1 and 2: the pty master, when process.terminal.
            Ok((ToParent::Console, fd)) => console = fd,
            // sync 1c: the seccomp filter is loaded; its notification fd
            // goes to the agent before the init can wait on it.
            Ok((ToParent::SeccompListener, Some(fd))) if listener.is_some() => {
                let (l, s) = listener.as_ref().expect("checked by the guard");
                let pid = process.pid().as_raw_nonzero().get();
                let state = crate::seccomp_notify::ProcessState {
                    id,
                    pid,
                    container_pid: pid,
                    status: "creating",
                    bundle: &s.bundle,
                    annotations: &s.annotations,
                };
                crate::seccomp_notify::deliver(l, fd, &state).await?;
                debug!(path = ?l.path, "seccomp listener fd delivered");
            }
            // sync 1b: mounts done, before pivot_root: prestart and
            // createRuntime, in the runtime namespace.
            Ok((ToParent::RunHooks, _)) if hooks.is_some() => {
                let ctx = hooks.expect("checked by the guard");
                let state = ctx.state_json(id, "creating", process.pid().as_raw_nonzero().get());
                ctx.run(crate::hooks::CREATE_RUNTIME, &state).await?;
                socket
                    .send_hooks_done()
                    .await
                    .map_err(|e| protocol_err(id, e))?;
            }
            Ok((
                other @ (ToParent::ExecPid(_) | ToParent::RunHooks | ToParent::SeccompListener),
                _,
            )) => {
                let kind = message_kind(&other);
                return Err(protocol_err(
                    id,
                    corral_protocol::Error::Unexpected { kind },
                ));
            }
            Ok((ToParent::Error(source), _)) => {
                return Err(Error::Init {
                    container_id: id.to_owned(),
                    source,
                });
            }
            // The child went away before it could speak: ECONNRESET when it
            // died with our spec frame unread (e.g. exec of corral-init failed).
            Err(e) if peer_gone(&e) => {
                let status = process
                    .wait()
                    .await
                    .map_err(|e| Error::sys("wait for init", e))?;
                return Err(Error::InitDied {
                    container_id: id.to_owned(),
                    status,
                });
            }
            Err(e) => return Err(protocol_err(id, e)),
        }
    }
}
