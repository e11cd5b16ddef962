//! Bad inputs give errors that name the problem and leave nothing behind.

use corral::{Error, Spec, Step};
use corral_tests::*;

#[tokio::test]
async fn missing_rootfs_is_named() {
    require_root();
    let _serial = CHILDREN.lock().await;
    let spec = Spec::builder()
        .rootfs("/nonexistent/rootfs-x")
        .args(["/bin/true"])
        .build()
        .unwrap();
    let err = runtime()
        .create(unique_id("norootfs"), spec)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Rootfs { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/rootfs-x"), "{err}");
}

#[tokio::test]
async fn missing_executable_reports_step_resolve_and_enoent() {
    require_root();
    let _serial = CHILDREN.lock().await;
    let before = child_count();
    let err = runtime()
        .create(unique_id("noexe"), probe_spec(&["/bin/nope"]))
        .await
        .unwrap_err();
    let init = err
        .init_error()
        .unwrap_or_else(|| panic!("not an init error: {err:?}"));
    assert_eq!(init.step, Step::Resolve);
    assert_eq!(init.errno, Some(libc::ENOENT));
    assert_eq!(init.path.as_ref().unwrap().as_bytes(), b"/bin/nope");
    assert_eq!(child_count(), before, "the failed init was reaped");
}

#[tokio::test]
async fn executable_not_on_path_is_named() {
    require_root();
    let _serial = CHILDREN.lock().await;
    let err = runtime()
        .create(unique_id("nopath"), probe_spec(&["nope-cmd"]))
        .await
        .unwrap_err();
    let init = err.init_error().expect("init error");
    assert_eq!(init.step, Step::Resolve);
    assert_eq!(init.path.as_ref().unwrap().as_bytes(), b"nope-cmd");
}

#[tokio::test]
async fn malformed_config_json_is_named() {
    let dir = TempDir::new("badjson");
    std::fs::write(
        dir.path().join("config.json"),
        "{\"ociVersion\": \"1.0.2\", \"process\": [}",
    )
    .unwrap();
    let err = Spec::from_bundle(dir.path()).unwrap_err();
    assert!(matches!(err, Error::LoadSpec { .. }));
    assert!(err.to_string().contains("config.json"), "{err}");
}

#[tokio::test]
async fn unknown_namespace_type_is_named() {
    let dir = TempDir::new("badns");
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "linux": {"namespaces": [{"type": "mount"}, {"type": "bogus"}]}
    });
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let err = Spec::from_bundle(dir.path()).unwrap_err();
    let chain = format!("{:?}", anyhow::Error::from(err));
    assert!(chain.contains("bogus"), "{chain}");
}

#[tokio::test]
async fn unsupported_field_is_refused_before_anything_starts() {
    require_root();
    let _serial = CHILDREN.lock().await;
    let before = child_count();
    let mut spec = probe_spec(&["/bin/true"]);
    let resources = serde_json::json!({"rdma": {"mlx5_0": {"hcaHandles": 3}}});
    spec.oci_mut()
        .linux_mut()
        .as_mut()
        .unwrap()
        .set_resources(Some(serde_json::from_value(resources).unwrap()));
    let err = runtime()
        .create(unique_id("unsup"), spec)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported: linux.resources.rdma: rdma limits are not implemented"
    );
    assert_eq!(child_count(), before);
}

#[tokio::test]
async fn invalid_id_is_refused() {
    let err = runtime()
        .create("../escape", probe_spec(&["/bin/true"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidId { .. }), "{err:?}");
}

#[tokio::test]
async fn unexecutable_init_binary_is_reported_with_its_errno() {
    require_root();
    let _serial = CHILDREN.lock().await;
    let rt = corral::Runtime::builder()
        .init_binary("/nonexistent/corral-init", false)
        .build()
        .unwrap();
    let before = child_count();
    let err = rt
        .create(unique_id("noinit"), probe_spec(&["/bin/true"]))
        .await
        .unwrap_err();
    match err {
        // The child's exit status is the errno of its failed execve.
        Error::InitDied { status, .. } => assert_eq!(status.code(), Some(libc::ENOENT)),
        other => panic!("expected InitDied, got {other:?}"),
    }
    assert_eq!(child_count(), before);
}
