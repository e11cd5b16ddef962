//! Terminals through the library: a container with `process.terminal`
//! gets a pty of its own devpts on fds 0-2, sized by `consoleSize`, and
//! its master comes back as an async [`corral::Console`] that reads what
//! the process prints, types into it, and resizes it.

use corral::Console;
use corral_tests::cli::HANG_GUARD;
use corral_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `spec` with a terminal of `(rows, cols)`.
fn with_terminal(mut spec: corral::Spec, rows: u64, cols: u64) -> corral::Spec {
    let process = spec
        .oci_mut()
        .process_mut()
        .as_mut()
        .expect("spec has a process");
    process.set_terminal(Some(true));
    let size = corral::oci_spec::runtime::BoxBuilder::default()
        .height(rows)
        .width(cols)
        .build()
        .unwrap();
    process.set_console_size(Some(size));
    spec
}

/// Reads `console` until what was read contains `needle`; returns it all.
async fn read_until(console: &mut Console, seen: &mut String, needle: &str) {
    let read = async {
        let mut buf = [0u8; 4096];
        while !seen.contains(needle) {
            let n = console.read(&mut buf).await.expect("read console");
            assert!(n > 0, "console closed before {needle:?}; read: {seen:?}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    };
    tokio::time::timeout(HANG_GUARD, read)
        .await
        .unwrap_or_else(|_| panic!("nothing matching {needle:?} for {HANG_GUARD:?}"));
}

/// Runs `/probe <cmd>` with a 37x91 terminal; returns what it printed.
async fn probe_on_terminal(cmd: &str) -> String {
    let rt = runtime();
    let spec = with_terminal(probe_spec(&["/probe", cmd]), 37, 91);
    let mut c = rt.create(unique_id("tty"), spec).await.unwrap();
    let mut console = c
        .take_console()
        .expect("a terminal container has a console");
    assert!(c.take_console().is_none(), "the console is taken once");
    c.start().await.unwrap();
    let mut out = String::new();
    console.read_to_string(&mut out).await.unwrap();
    assert!(c.wait().await.unwrap().success(), "probe {cmd}: {out}");
    c.delete().await.unwrap();
    out
}

#[tokio::test]
async fn terminal_process_has_a_tty_on_0_1_2_with_the_spec_window_size() {
    require_root();
    assert_eq!(probe_on_terminal("isatty").await, "[true,true,true]\r\n");
    assert_eq!(probe_on_terminal("winsize").await, "[37,91]\r\n");
}

#[tokio::test]
async fn interactive_sh_through_the_console_answers_echo_and_sees_a_resize() {
    require_root();
    let tmp = TempDir::new("sh-tty");
    let rootfs = tmp.path().join("rootfs");
    build_busybox_rootfs(&rootfs).unwrap();
    let spec = corral::Spec::builder()
        .rootfs(&rootfs)
        .args(["sh"])
        .env("PATH", "/bin")
        .namespaces(&[
            corral::oci_spec::runtime::LinuxNamespaceType::Pid,
            corral::oci_spec::runtime::LinuxNamespaceType::Mount,
        ])
        .build()
        .unwrap();
    let rt = runtime();
    let mut c = rt
        .create(unique_id("sh-tty"), with_terminal(spec, 24, 80))
        .await
        .unwrap();
    let mut console = c.take_console().unwrap();
    c.start().await.unwrap();
    let mut seen = String::new();
    // The shell's output, not the terminal's echo of what we typed.
    console.write_all(b"echo hel''lo-$((6*7))\n").await.unwrap();
    read_until(&mut console, &mut seen, "hello-42").await;
    assert_eq!(console.size().unwrap(), (24, 80));
    console.resize(30, 100).unwrap();
    console.write_all(b"stty size; exit 3\n").await.unwrap();
    read_until(&mut console, &mut seen, "30 100").await;
    assert_eq!(c.wait().await.unwrap().code(), Some(3), "{seen}");
    c.delete().await.unwrap();
}

/// A terminal container run by `corral run` under a pty: the process sees
/// a tty on 0-2 with the caller's window size.
#[test]
fn corral_run_with_terminal_under_a_pty_gives_the_callers_window_size() {
    use corral_tests::cli::*;
    require_root();
    let mut w = CliWorld::new("winsize");
    w.bundle.set_args(&[
        "sh",
        "-c",
        "stty size; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty",
    ]);
    let id = w.id("winsize");
    let _guard = w.corral.guard(&id);
    let out = w
        .corral
        .spawn_pty_sized(
            [
                std::ffi::OsStr::new("run"),
                std::ffi::OsStr::new("--bundle"),
                w.bundle.path().as_os_str(),
                std::ffi::OsStr::new(&id),
            ],
            Some((33, 101)),
        )
        .finish();
    assert_eq!(out.code(), 0, "{out}");
    assert_eq!(out.lines(), ["33 101", "all-tty"], "{out}");
    assert_no_mounts_under(w.bundle.path());
}
