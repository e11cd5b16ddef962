//! OCI hooks on the runtime's side: validation, the state JSON each hook
//! reads on stdin, and running the hooks that belong to the runtime
//! namespace (`prestart`, `createRuntime`, `poststart`, `poststop`).
//!
//! `createContainer` and `startContainer` run inside the container's
//! namespaces; the init runs them (`runtime-init/src/hooks.rs`), from the
//! [`InitHooks`] built here.
//!
//! Failure semantics are the runtime spec's: a failing `prestart` or
//! `createRuntime` hook fails `create` (the caller cleans up), a failing
//! `poststart` or `poststop` hook is logged at `warn` and ignored.
//!
//! Hooks run as `tokio::process` children: the wait and the timeout never
//! block a worker thread, and a hook whose timeout passes is killed (the
//! child is dropped with `kill_on_drop`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use corral_protocol::{InitHooks, RawPath};
use oci_spec::runtime::{Hook, Hooks};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, warn};

use crate::error::{Error, Result};

/// The six kinds of hook, named as in `config.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Prestart,
        Kind::CreateRuntime,
        Kind::CreateContainer,
        Kind::StartContainer,
        Kind::Poststart,
        Kind::Poststop,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }

    fn list(self, hooks: &Hooks) -> &[Hook] {
        let list = match self {
            // `prestart` is deprecated by the spec; it still runs, with
            // `createRuntime` (as runc runs it).
            #[allow(deprecated)]
            Kind::Prestart => hooks.prestart(),
            Kind::CreateRuntime => hooks.create_runtime(),
            Kind::CreateContainer => hooks.create_container(),
            Kind::StartContainer => hooks.start_container(),
            Kind::Poststart => hooks.poststart(),
            Kind::Poststop => hooks.poststop(),
        };
        list.as_deref().unwrap_or(&[])
    }
}

/// What a container keeps to run its later hooks and render its state.
#[derive(Clone, Debug)]
pub(crate) struct HookContext {
    /// The config's hooks.
    pub hooks: Hooks,
    /// Bundle directory (in the state JSON).
    pub bundle: PathBuf,
    /// The config's annotations (in the state JSON).
    pub annotations: BTreeMap<String, String>,
}

impl HookContext {
    /// The context of a stored container that has hooks.
    pub(crate) fn of_stored(stored: &crate::StoredState) -> Option<Self> {
        Some(HookContext {
            hooks: stored.hooks.clone()?,
            bundle: stored.bundle.clone(),
            annotations: stored.annotations.clone(),
        })
    }

    /// The context of a spec that has hooks, `None` otherwise.
    pub(crate) fn of(spec: &crate::Spec) -> Option<Self> {
        let hooks = spec.oci().hooks().clone()?;
        Some(HookContext {
            hooks,
            bundle: spec.bundle().to_path_buf(),
            annotations: spec
                .oci()
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        })
    }

    /// The OCI state JSON: `ociVersion`, `id`, `status`, `pid`, `bundle`,
    /// `annotations`.
    pub(crate) fn state_json(&self, id: &str, status: &str, pid: i32) -> String {
        let state = serde_json::json!({
            "ociVersion": "1.2.0",
            "id": id,
            "status": status,
            "pid": pid,
            "bundle": self.bundle,
            "annotations": self.annotations,
        });
        state.to_string()
    }

    /// Runs the hooks of `kinds` in order; the first failure is returned.
    pub(crate) async fn run(&self, kinds: &[Kind], state: &str) -> Result<()> {
        for &kind in kinds {
            for (i, hook) in kind.list(&self.hooks).iter().enumerate() {
                let field = format!("hooks.{}[{i}]", kind.name());
                run_one(&field, hook, state.as_bytes()).await?;
            }
        }
        Ok(())
    }

    /// Runs the hooks of `kind`, logging (not returning) a failure: for
    /// `poststart` and `poststop`. Every hook runs even if one fails.
    pub(crate) async fn run_logged(&self, kind: Kind, id: &str, status: &str, pid: i32) {
        let list = kind.list(&self.hooks);
        if list.is_empty() {
            return;
        }
        let state = self.state_json(id, status, pid);
        for (i, hook) in list.iter().enumerate() {
            let field = format!("hooks.{}[{i}]", kind.name());
            if let Err(error) = run_one(&field, hook, state.as_bytes()).await {
                warn!(container_id = id, %error, "hook failed; ignored as the runtime spec says");
            }
        }
    }
}

/// Checks every hook: an absolute path, `KEY=value` env entries, a
/// positive timeout.
pub(crate) fn validate(hooks: &Hooks) -> Result<()> {
    for kind in Kind::ALL {
        for (i, hook) in kind.list(hooks).iter().enumerate() {
            let field = format!("hooks.{}[{i}]", kind.name());
            if !hook.path().is_absolute() {
                return Err(Error::invalid(
                    format!("{field}.path"),
                    format!("{:?} is not absolute", hook.path()),
                ));
            }
            for (j, e) in hook.env().iter().flatten().enumerate() {
                if !e.contains('=') || e.contains('\0') {
                    return Err(Error::invalid(
                        format!("{field}.env[{j}]"),
                        format!("{e:?} is not KEY=value"),
                    ));
                }
            }
            if hook.args().iter().flatten().any(|a| a.contains('\0')) {
                return Err(Error::invalid(
                    format!("{field}.args"),
                    "contains a NUL byte",
                ));
            }
            if let Some(t) = hook.timeout() {
                if t <= 0 {
                    return Err(Error::invalid(
                        format!("{field}.timeout"),
                        format!("{t} is not a positive number of seconds"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The init's part: `createContainer` and `startContainer`, and whether to
/// stop for the parent's `prestart`/`createRuntime`. The state JSON is
/// filled in once the pid is known ([`fill_states`]).
pub(crate) fn init_hooks(hooks: &Hooks) -> InitHooks {
    let convert = |kind: Kind| -> Vec<corral_protocol::Hook> {
        let list = kind.list(hooks);
        list.iter()
            .enumerate()
            .map(|(i, h)| corral_protocol::Hook {
                path: RawPath::from(h.path().as_path()),
                args: h
                    .args()
                    .iter()
                    .flatten()
                    .map(|a| RawPath::from(a.as_str()))
                    .collect(),
                env: h
                    .env()
                    .iter()
                    .flatten()
                    .map(|e| RawPath::from(e.as_str()))
                    .collect(),
                timeout_secs: h.timeout().map(|t| t.max(1) as u64),
                field: format!("hooks.{}[{i}]", kind.name()),
            })
            .collect()
    };
    InitHooks {
        ask_parent: !Kind::Prestart.list(hooks).is_empty()
            || !Kind::CreateRuntime.list(hooks).is_empty(),
        create_container: convert(Kind::CreateContainer),
        start_container: convert(Kind::StartContainer),
        creating_state: String::new(),
        created_state: String::new(),
    }
}

/// Puts the state JSON (`creating`, `created`) into the init's hooks.
pub(crate) fn fill_states(init: &mut InitHooks, ctx: &HookContext, id: &str, pid: i32) {
    init.creating_state = ctx.state_json(id, "creating", pid);
    init.created_state = ctx.state_json(id, "created", pid);
}

/// Runs one hook: `path` with exactly `args` (`args[0]` is `argv[0]`) and
/// `env`, the state on stdin; killed when `timeout` passes.
async fn run_one(field: &str, hook: &Hook, state: &[u8]) -> Result<()> {
    let path = hook.path();
    let err = |reason: String| Error::Hook {
        field: field.to_owned(),
        path: path.clone(),
        reason,
    };
    debug!(field, ?path, "run hook");
    let mut cmd = tokio::process::Command::new(path);
    let args = hook.args().as_deref().unwrap_or(&[]);
    if let Some((first, rest)) = args.split_first() {
        cmd.arg0(first).args(rest);
    }
    cmd.env_clear();
    for entry in hook.env().iter().flatten() {
        let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
        cmd.env(key, value);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| err(format!("spawn: {e}")))?;
    let stdin = child.stdin.take();
    let stderr = child.stderr.take();
    let finish = async {
        if let Some(mut stdin) = stdin {
            // A hook may exit without reading its stdin: EPIPE is fine.
            let _ = stdin.write_all(state).await;
        }
        let mut text = Vec::new();
        if let Some(mut stderr) = stderr {
            let _ = stderr.read_to_end(&mut text).await;
        }
        let status = child.wait().await;
        (status, text)
    };
    let outcome = match hook.timeout() {
        Some(secs) => {
            let limit = Duration::from_secs(secs.max(1) as u64);
            tokio::time::timeout(limit, finish).await.ok()
        }
        None => Some(finish.await),
    };
    let Some((status, text)) = outcome else {
        // SIGKILL and reap before returning: nothing of the hook outlives
        // the failed operation.
        let _ = child.kill().await;
        return Err(err(format!(
            "killed at its timeout of {} s",
            hook.timeout().unwrap_or_default()
        )));
    };
    let status = status.map_err(|e| err(format!("wait: {e}")))?;
    if status.success() {
        return Ok(());
    }
    Err(err(format!("{status}{}", stderr_tail(&text))))
}

/// The last line or so of a hook's stderr, for the error.
fn stderr_tail(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let start = text.len().saturating_sub(512);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    format!(", stderr: {:?}", &text[start..])
}

/// Kinds whose hooks `create` runs in the runtime namespace.
pub(crate) const CREATE_RUNTIME: &[Kind] = &[Kind::Prestart, Kind::CreateRuntime];
