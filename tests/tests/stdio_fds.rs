//! Copying container output leaks no fd in the runtime's process, with
//! either stdio backend. A test binary of its own: it counts this
//! process's fds, which any concurrently running container test changes.

use corral::{Backend, Runtime, Stdio};
use corral_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn run_one(rt: &Runtime, dir: &std::path::Path, n: usize) {
    let mut c = rt
        .create(unique_id("fds"), probe_spec(&["/probe", "cat"]))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::file(dir.join(format!("err-{n}")).as_path()))
        .await
        .unwrap();
    let mut stdin = c.take_stdin().unwrap();
    let mut out = c.take_stdout().unwrap();
    c.start().await.unwrap();
    stdin.write_all(b"hello\n").await.unwrap();
    drop(stdin);
    let mut got = Vec::new();
    out.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"hello\n");
    drop(out);
    c.stdio_done().await.unwrap();
    assert!(c.wait().await.unwrap().success());
    c.delete().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_copies_leak_no_fds_on_either_backend() {
    require_root();
    let dir = TempDir::new("stdio-fds");
    for backend in [Backend::IoUring, Backend::Fallback] {
        let rt = match Runtime::builder().stdio_backend(backend).build() {
            Ok(rt) => rt,
            Err(e) if backend == Backend::IoUring => {
                assert!(
                    std::env::var_os("STRICT_FEATURES").is_none_or(|v| v != "1"),
                    "missing kernel feature io_uring: {e:?} (STRICT_FEATURES=1)"
                );
                eprintln!("skipped: io_uring: {e:?}");
                continue;
            }
            Err(e) => panic!("build a runtime: {e:?}"),
        };
        // The first container sets up what lives as long as the runtime
        // (the ring and its eventfd, the init memfd).
        run_one(&rt, dir.path(), 0).await;
        let before = open_fds();
        for n in 1..=5 {
            run_one(&rt, dir.path(), n).await;
        }
        assert_eq!(open_fds(), before, "{backend:?}: fds leaked");
    }
}
