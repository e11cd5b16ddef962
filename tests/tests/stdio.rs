//! Container output through both stdio backends: every test here runs
//! once with io_uring (`<test>::io_uring`) and once with the tokio
//! fallback (`<test>::fallback`). Select one with the test filter, e.g.
//! `cargo test -p corral-tests --test stdio fallback`.
//!
//! The container writes `probe emit`'s pattern (byte i is `i % 251`), so
//! a lost, repeated or reordered chunk fails the comparison.

use corral::{Backend, Container, Runtime, Stdio};
use corral_tests::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

const MIB: u64 = 1024 * 1024;

/// Generates `<name>::io_uring` and `<name>::fallback` for
/// `async fn <name>(backend: Backend)`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn io_uring() {
                super::$name(corral::Backend::IoUring).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn fallback() {
                super::$name(corral::Backend::Fallback).await
            }
        }
    )*};
}

on_both_backends!(
    piped_output_arrives_in_order_and_ends_at_eof,
    large_piped_output_arrives_exactly,
    reader_that_stops_reading_blocks_the_container_until_it_resumes,
    output_left_in_the_pipe_at_exit_is_not_lost,
    stdout_to_a_file_path_is_exact,
    stderr_to_an_open_file_is_exact,
    output_left_in_the_pipe_at_exit_reaches_the_file,
    piped_stdin_round_trips_through_the_container,
    dropping_the_reader_fails_the_writer_instead_of_hanging,
);

/// A runtime with `backend`, or `None` (test skipped) where io_uring is
/// unavailable; with `STRICT_FEATURES=1` that fails instead.
fn runtime_for(backend: Backend) -> Option<Runtime> {
    require_root();
    match Runtime::builder().stdio_backend(backend).build() {
        Ok(rt) => Some(rt),
        Err(e) if backend == Backend::IoUring => {
            if std::env::var_os("STRICT_FEATURES").is_some_and(|v| v == "1") {
                panic!("missing kernel feature io_uring: {e:?} (STRICT_FEATURES=1)");
            }
            eprintln!("skipped: io_uring: {e:?}");
            None
        }
        Err(e) => panic!("build a runtime: {e:?}"),
    }
}

fn emit_spec(bytes: u64, fd: u32) -> corral::Spec {
    let bytes = bytes.to_string();
    let fd = fd.to_string();
    probe_spec(&["/probe", "emit", &bytes, &fd])
}

fn pattern(from: u64, len: usize) -> Vec<u8> {
    (from..from + len as u64).map(|i| (i % 251) as u8).collect()
}

/// Reads `reader` to EOF, or `limit` bytes, checking each byte against the
/// pattern from offset `from`; returns how many bytes were read.
async fn read_checking(reader: &mut (impl AsyncRead + Unpin), from: u64, limit: u64) -> u64 {
    let mut buf = vec![0u8; 256 * 1024];
    let mut at = from;
    while at - from < limit {
        let want = buf.len().min((limit - (at - from)) as usize);
        let n = reader.read(&mut buf[..want]).await.unwrap();
        if n == 0 {
            break;
        }
        assert!(
            buf[..n] == pattern(at, n)[..],
            "output differs from the pattern within bytes {at}..{}",
            at + n as u64
        );
        at += n as u64;
    }
    at - from
}

fn assert_file_is_pattern(path: &std::path::Path, len: u64) {
    let got = std::fs::read(path).unwrap();
    assert_eq!(got.len() as u64, len, "file length");
    assert!(
        got == pattern(0, len as usize),
        "file differs from the pattern"
    );
}

async fn finish(c: Container) {
    let status = c.wait().await.unwrap();
    assert!(status.success(), "probe exited with {status}");
    c.delete().await.unwrap();
}

async fn piped_output_arrives_in_order_and_ends_at_eof(backend: Backend) {
    let Some(rt) = runtime_for(backend) else {
        return;
    };
    let mut c = rt
        .create(unique_id("order"), emit_spec(MIB + 7, 1))
        .stdout(Stdio::piped())
        .await
        .unwrap();
    let mut out = c.take_stdout().unwrap();
    c.start().await.unwrap();
    let mut got = Vec::new();
    out.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len() as u64, MIB + 7);
    assert!(got == pattern(0, got.len()), "output out of order");
    // EOF is sticky.
    assert_eq!(out.read(&mut [0u8; 16]).await.unwrap(), 0);
    finish(c).await;
}

async fn large_piped_output_arrives_exactly(backend: Backend) {
    let Some(rt) = runtime_for(backend) else {
        return;
    };
    let mut c = rt
        .create(unique_id("large"), emit_spec(64 * MIB, 1))
        .stdout(Stdio::piped())
        .await
        .unwrap();
    let mut out = c.take_stdout().unwrap();
    c.start().await.unwrap();
    assert_eq!(read_checking(&mut out, 0, u64::MAX).await, 64 * MIB);
    finish(c).await;
}

/// Whether the process `pid` sleeps in `pipe_write` (`anon_pipe_write`
/// on newer kernels): blocked on a full pipe. Panics if it exited.
fn blocked_on_full_pipe(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
    assert!(
        matches!(state, Some('R' | 'S' | 'D')),
        "the container finished writing although nobody read: no backpressure ({state:?})"
    );
    std::fs::read_to_string(format!("/proc/{pid}/wchan"))
        .unwrap_or_default()
        .contains("pipe_write")
}

async fn reader_that_stops_reading_blocks_the_container_until_it_resumes(backend: Backend) {
    let Some(rt) = runtime_for(backend) else {
        return;
    };
    let total = 32 * MIB;
    let mut c = rt
        .create(unique_id("stall"), emit_spec(total, 1))
        .stdout(Stdio::piped())
        .await
        .unwrap();
    let mut out = c.take_stdout().unwrap();
    c.start().await.unwrap();
    let first = read_checking(&mut out, 0, MIB).await;
    assert_eq!(first, MIB);
    // The reader stops. The copy must stop too, so the container fills its
    // pipe and blocks in write(2); were the copy to buffer without bound,
    // the 32 MiB would all be written and the process would exit.
    while !blocked_on_full_pipe(c.pid()) {
        tokio::task::yield_now().await;
    }
    let rest = read_checking(&mut out, first, u64::MAX).await;
    assert_eq!(first + rest, total);
    finish(c).await;
}

async fn output_left_in_the_pipe_at_exit_is_not_lost(backend: Backend) {
    let Some(rt) = runtime_for(backend) else {
        return;
    };
    // Less than the pipe's 64 KiB: the write completes, the process exits
    // with everything still unread.
    let len = 60_000;
    let mut c = rt
        .create(unique_id("leftover"), emit_spec(len, 1))
        .stdout(Stdio::piped())
        .await
        .unwrap();
    let mut out = c.take_stdout().unwrap();
    c.start().await.unwrap();
    let status = c.wait().await.unwrap();
    assert!(status.success(), "probe exited with {status}");
    let mut got = Vec::new();
    out.read_to_end(&mut got).await.unwrap();
    assert!(got == pattern(0, len as usize), "got {} bytes", got.len());
    c.delete().await.unwrap();
}

async fn stdout_to_a_file_path_is_exact(backend: Backend) {
    let Some(rt) = runtime_for(backend) else {
        return;
    };
    let dir = TempDir::new("stdio-file");
    let path = dir.path().join("out");
    let len = 16 * MIB + 3;
    let mut c = rt
        .create(unique_id("file"), emit_spec(len, 1))
        .stdout(Stdio::file(path.as_path()))
        .await
        .unwrap();
    c.start().await.unwrap();
    assert_eq!(c.stdio_done().await.unwrap(), len);
    assert_file_is_pattern(&path, len);
    finish(c).await;
}

async fn stderr_to_an_open_file_is_exact(backend: Backend) {
    let Some(rt) = runtime_for(backend) else {
        return;
    };
    let dir = TempDir::new("stdio-stderr");
    let path = dir.path().join("err");
    let file = std::fs::File::create(&path).unwrap();
    let len = 3 * MIB;
    let mut c = rt
        .create(unique_id("stderr"), emit_spec(len, 2))
        .stderr(Stdio::file(file))
        .await
        .unwrap();
    c.start().await.unwrap();
    assert_eq!(c.stdio_done().await.unwrap(), len);
    assert_file_is_pattern(&path, len);
    finish(c).await;
}

async fn output_left_in_the_pipe_at_exit_reaches_the_file(backend: Backend) {
    let Some(rt) = runtime_for(backend) else {
        return;
    };
    let dir = TempDir::new("stdio-exit");
    let path = dir.path().join("out");
    let len = 60_000;
    let mut c = rt
        .create(unique_id("exit-file"), emit_spec(len, 1))
        .stdout(Stdio::file(path.as_path()))
        .await
        .unwrap();
    c.start().await.unwrap();
    let status = c.wait().await.unwrap();
    assert!(status.success(), "probe exited with {status}");
    assert_eq!(c.stdio_done().await.unwrap(), len);
    assert_file_is_pattern(&path, len);
    c.delete().await.unwrap();
}

async fn piped_stdin_round_trips_through_the_container(backend: Backend) {
    let Some(rt) = runtime_for(backend) else {
        return;
    };
    let len = 4 * MIB as usize;
    let mut c = rt
        .create(unique_id("stdin"), probe_spec(&["/probe", "cat"]))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .await
        .unwrap();
    let mut stdin = c.take_stdin().unwrap();
    let mut out = c.take_stdout().unwrap();
    c.start().await.unwrap();
    let writer = tokio::spawn(async move {
        stdin.write_all(&pattern(0, len)).await.unwrap();
        // Dropping stdin closes the pipe: cat sees EOF.
    });
    assert_eq!(read_checking(&mut out, 0, u64::MAX).await, len as u64);
    writer.await.unwrap();
    finish(c).await;
}

async fn dropping_the_reader_fails_the_writer_instead_of_hanging(backend: Backend) {
    let Some(rt) = runtime_for(backend) else {
        return;
    };
    let mut c = rt
        .create(unique_id("drop-reader"), emit_spec(64 * MIB, 1))
        .stdout(Stdio::piped())
        .await
        .unwrap();
    let mut out = c.take_stdout().unwrap();
    c.start().await.unwrap();
    assert_eq!(read_checking(&mut out, 0, MIB).await, MIB);
    drop(out);
    // With the read end closed, write(2) fails with EPIPE and probe exits
    // 1 (Rust ignores SIGPIPE).
    let status = c.wait().await.unwrap();
    assert_eq!(status.code(), Some(1), "probe exited with {status}");
    c.delete().await.unwrap();
}
