//! `linux` fields that reach into the host: `linux.memoryPolicy` (read back
//! with `probe mempolicy`), `linux.netDevices` (a veth pair made by the
//! test with `ip`, looked for inside with `probe netdevs` and on the host),
//! and `linux.intelRdt` (refused as runc refuses it without resctrl).
//! Bad-input tests check the error names the field and that nothing is
//! left: no child, no state dir, no device moved. `docs/spec-coverage.md`
//! maps each field to its tests.

use std::path::Path;
use std::process::Command;

use corral::Spec;
use corral_tests::*;

/// Serialises this file's tests: they count this process's children.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    CHILDREN.lock().await
}

async fn probe_json(spec: Spec) -> serde_json::Value {
    let (status, out) = run_capture(&runtime(), spec).await.unwrap();
    assert!(status.success(), "{status}: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

fn linux(spec: &mut Spec) -> &mut corral::oci_spec::runtime::Linux {
    spec.oci_mut().linux_mut().as_mut().unwrap()
}

// ---------------------------------------------------------------------------
// linux.memoryPolicy

fn with_policy(args: &[&str], json: &str) -> Spec {
    let mut spec = probe_spec(args);
    linux(&mut spec).set_memory_policy(Some(serde_json::from_str(json).unwrap()));
    spec
}

#[tokio::test]
async fn memory_policy_bind_interleave_and_preferred_are_set_for_the_process() {
    require_root();
    let _serial = serial().await;
    let cases = [
        (r#"{"mode":"MPOL_BIND","nodes":"0"}"#, 2, 0),
        (r#"{"mode":"MPOL_INTERLEAVE","nodes":"0"}"#, 3, 0),
        (r#"{"mode":"MPOL_PREFERRED","nodes":"0"}"#, 1, 0),
        (
            r#"{"mode":"MPOL_BIND","nodes":"0","flags":["MPOL_F_STATIC_NODES"]}"#,
            2,
            1 << 15,
        ),
    ];
    for (json, mode, flags) in cases {
        let got = probe_json(with_policy(&["/probe", "mempolicy"], json)).await;
        assert_eq!(
            (
                got["mode"].as_i64(),
                got["flags"].as_i64(),
                got["nodes"].clone()
            ),
            (Some(mode), Some(flags), serde_json::json!([0])),
            "{json}: {got}"
        );
    }
    // Without the field the process keeps the default policy.
    let got = probe_json(probe_spec(&["/probe", "mempolicy"])).await;
    assert_eq!(got["mode"].as_i64(), Some(0), "{got}");
}

#[tokio::test]
async fn bad_memory_policies_are_refused_naming_the_field() {
    require_root();
    let _serial = serial().await;
    // One past the host's possible nodes: no such node.
    let possible = std::fs::read_to_string("/sys/devices/system/node/possible").unwrap();
    let last: u32 = possible
        .trim()
        .rsplit([',', '-'])
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let missing = format!(r#"{{"mode":"MPOL_BIND","nodes":"{}"}}"#, last + 1);
    let cases = [
        (missing.as_str(), "linux.memoryPolicy.nodes"),
        (r#"{"mode":"MPOL_BIND"}"#, "linux.memoryPolicy.nodes"),
        (
            r#"{"mode":"MPOL_DEFAULT","nodes":"0"}"#,
            "linux.memoryPolicy.nodes",
        ),
        (
            r#"{"mode":"MPOL_BIND","nodes":"0","flags":["MPOL_F_STATIC_NODES","MPOL_F_RELATIVE_NODES"]}"#,
            "linux.memoryPolicy.flags",
        ),
        (
            r#"{"mode":"MPOL_INTERLEAVE","nodes":"0","flags":["MPOL_F_NUMA_BALANCING"]}"#,
            "linux.memoryPolicy.flags",
        ),
    ];
    for (json, field) in cases {
        assert_refused(with_policy(&["/probe"], json), field).await;
    }
}

// ---------------------------------------------------------------------------
// linux.netDevices

/// A veth pair `<name>` / `<name>p` on the host, deleted on drop (deleting
/// either end deletes both; errors are ignored, as the pair may be gone).
struct Veth {
    name: String,
    peer: String,
}

impl Veth {
    fn new(tag: &str) -> Veth {
        let name = format!("crl{tag}{}", std::process::id() % 10000);
        let peer = format!("{name}p");
        let _ = ip(&["link", "del", &name]);
        ip(&["link", "add", &name, "type", "veth", "peer", "name", &peer]).unwrap();
        Veth { name, peer }
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.name]);
        let _ = ip(&["link", "del", &self.peer]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn on_host(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn with_devices(args: &[&str], devices: serde_json::Value, network: bool) -> Spec {
    use corral::oci_spec::runtime::LinuxNamespaceType as Ns;
    let mut spec = probe_spec(args);
    if network {
        let mut namespaces = linux(&mut spec).namespaces().clone().unwrap_or_default();
        namespaces.push(
            corral::oci_spec::runtime::LinuxNamespaceBuilder::default()
                .typ(Ns::Network)
                .build()
                .unwrap(),
        );
        linux(&mut spec).set_namespaces(Some(namespaces));
    }
    linux(&mut spec).set_net_devices(Some(serde_json::from_value(devices).unwrap()));
    spec
}

#[tokio::test]
async fn net_devices_move_into_the_container_renamed_and_up() {
    use tokio::io::AsyncReadExt;
    require_root();
    let _serial = serial().await;
    let veth = Veth::new("m");
    let spec = with_devices(
        &["/probe", "netdevs"],
        serde_json::json!({ &veth.name: { "name": "eth7" } }),
        true,
    );
    let rt = runtime();
    let mut c = rt
        .create(unique_id("netdev"), spec)
        .stdout(corral::Stdio::piped())
        .await
        .unwrap();
    // Created: the device has left the host; its peer stays.
    assert!(!on_host(&veth.name), "{} still on the host", veth.name);
    assert!(on_host(&veth.peer));
    let mut out = c.take_stdout().unwrap();
    c.start().await.unwrap();
    let mut text = String::new();
    out.read_to_string(&mut text).await.unwrap();
    assert!(c.wait().await.unwrap().success(), "{text}");
    let got: serde_json::Value = serde_json::from_str(&text).unwrap();
    let flags = got["eth7"]
        .as_i64()
        .unwrap_or_else(|| panic!("no eth7 inside: {got}"));
    assert_eq!(
        flags & libc::IFF_UP as i64,
        libc::IFF_UP as i64,
        "eth7 is down: {got}"
    );
    assert!(got.get(&veth.name).is_none(), "old name inside: {got}");
    c.delete().await.unwrap();
    // The namespace is gone with its processes: a veth end is destroyed
    // with it (network_namespaces(7)), never back under its host name.
    assert!(!on_host(&veth.name), "{} came back", veth.name);
}

#[tokio::test]
async fn a_missing_net_device_is_refused_and_moves_nothing() {
    require_root();
    let _serial = serial().await;
    let veth = Veth::new("x");
    let spec = with_devices(
        &["/probe"],
        serde_json::json!({ &veth.name: {}, "crl-nosuch0": {} }),
        true,
    );
    assert_refused(spec, "linux.netDevices.crl-nosuch0").await;
    assert!(on_host(&veth.name), "{} was moved", veth.name);
}

#[tokio::test]
async fn a_failed_move_puts_the_devices_already_moved_back() {
    require_root();
    let _serial = serial().await;
    let veth = Veth::new("r");
    // Moved in order of host name: the veth first, then `lo`, which the
    // kernel refuses to move (NETIF_F_NETNS_LOCAL).
    assert!(veth.name.as_str() < "lo");
    let spec = with_devices(
        &["/probe"],
        serde_json::json!({ &veth.name: { "name": "eth7" }, "lo": { "name": "lo7" } }),
        true,
    );
    assert_refused(spec, "linux.netDevices.lo").await;
    assert!(on_host(&veth.name), "{} was not moved back", veth.name);
    let flags = std::fs::read_to_string(format!("/sys/class/net/{}/flags", veth.name)).unwrap();
    let flags = i64::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & libc::IFF_UP as i64, 0, "moved back up");
}

#[tokio::test]
async fn a_create_failing_in_the_init_puts_the_devices_back() {
    require_root();
    let _serial = serial().await;
    let veth = Veth::new("f");
    let spec = with_devices(
        &["/no-such-program"],
        serde_json::json!({ &veth.name: { "name": "eth7" } }),
        true,
    );
    let before = child_count();
    let err = runtime()
        .create(unique_id("netdev-fail"), spec)
        .await
        .unwrap_err();
    assert_eq!(
        err.init_error().map(|e| e.step),
        Some(corral::Step::Resolve),
        "{err:?}"
    );
    assert_eq!(child_count(), before, "a child was left");
    assert!(on_host(&veth.name), "{} was not moved back", veth.name);
}

#[tokio::test]
async fn net_devices_need_a_new_network_namespace() {
    require_root();
    let _serial = serial().await;
    let veth = Veth::new("n");
    let spec = with_devices(&["/probe"], serde_json::json!({ &veth.name: {} }), false);
    assert_refused(spec, "linux.netDevices").await;
    assert!(on_host(&veth.name));
}

// ---------------------------------------------------------------------------
// linux.intelRdt

#[tokio::test]
async fn intel_rdt_is_refused_naming_the_field() {
    require_root();
    let _serial = serial().await;
    let mut spec = probe_spec(&["/probe"]);
    linux(&mut spec).set_intel_rdt(Some(
        serde_json::from_str(r#"{"closID":"corral-test","l3CacheSchema":"L3:0=f"}"#).unwrap(),
    ));
    let mounted = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(" - resctrl ");
    let err = runtime()
        .create(unique_id("rdt"), spec.clone())
        .await
        .unwrap_err();
    let expected = if mounted {
        "does not apply intelRdt"
    } else {
        "Intel RDT is not supported or enabled"
    };
    assert!(err.to_string().contains(expected), "{err}");
    assert_refused(spec, "linux.intelRdt").await;
}
