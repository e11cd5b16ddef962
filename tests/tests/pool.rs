//! Warm pools: containers parked before execve, handed out with the job's
//! own arguments and environment, refilled in the background.

use corral::Stdio;
use corral_tests::*;
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn pool_hands_out_containers_running_the_jobs_args_and_refills() {
    require_root();
    let rt = runtime();
    let pool = rt.pool_with(probe_spec(&["/bin/false"]), 2, |c| c.stdout(Stdio::piped()));
    pool.filled().await;
    assert_eq!(pool.parked(), 2);
    for n in 0..5 {
        let env = vec![format!("JOB={n}"), "PATH=/bin".to_owned()];
        let mut c = pool
            .start(["echo", "job", &n.to_string()], Some(env))
            .await
            .unwrap();
        let mut out = String::new();
        c.take_stdout()
            .unwrap()
            .read_to_string(&mut out)
            .await
            .unwrap();
        assert_eq!(out, format!("job {n}\n"));
        assert!(c.wait().await.unwrap().success());
        c.delete().await.unwrap();
    }
    pool.filled().await;
    assert_eq!(pool.parked(), 2);
}

#[tokio::test]
async fn pooled_container_sees_the_jobs_environment() {
    require_root();
    let rt = runtime();
    let pool = rt.pool_with(probe_spec(&["/bin/false"]), 1, |c| c.stdout(Stdio::piped()));
    let mut c = pool
        .start(["/probe", "info"], Some(vec!["JOB=7".into()]))
        .await
        .unwrap();
    let mut out = String::new();
    c.take_stdout()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["env"], serde_json::json!(["JOB=7"]));
    assert_eq!(info["args"], serde_json::json!(["/probe", "info"]));
    assert_eq!(info["pid"], 1);
    assert!(c.wait().await.unwrap().success());
}

#[tokio::test]
async fn a_missing_program_fails_the_start_naming_it() {
    require_root();
    let rt = runtime();
    let pool = rt.pool(probe_spec(&["/bin/true"]), 1);
    let err = pool.start(["/bin/nope"], None).await.unwrap_err();
    let init = err
        .init_error()
        .unwrap_or_else(|| panic!("not an init error: {err:?}"));
    assert_eq!(init.step, corral::Step::Resolve);
    assert_eq!(init.path.as_ref().unwrap().as_bytes(), b"/bin/nope");
}

#[tokio::test]
async fn empty_args_are_refused() {
    require_root();
    let rt = runtime();
    let pool = rt.pool(probe_spec(&["/bin/true"]), 1);
    let err = pool.start(Vec::<String>::new(), None).await.unwrap_err();
    assert!(err.to_string().starts_with("invalid process.args"), "{err}");
}
