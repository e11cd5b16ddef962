//! The resident init (`RuntimeBuilder::resident_init`), in a test binary
//! of its own: it counts this process's children, which other tests'
//! runtimes would add to.

use corral_tests::*;

/// The tests count this process's resident inits: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Children of this process whose command line is the resident init's and
/// that are in this pid namespace (the inits it clones start with its
/// command line too, but each in a namespace of its own).
fn resident_inits() -> Vec<i32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for pid in children
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let own_ns = status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .is_some_and(|ids| ids.split_whitespace().count() == 1);
            if cmdline == b"corral-init\x003\x00resident\x00" && own_ns {
                out.push(pid);
            }
        }
    }
    out
}

/// One resident init clones every container's init: the containers are
/// this process's children (so `wait` reaps them as ever), only one more
/// process is there for the runtime, it is started again if it dies, and
/// it is gone with the runtime.
#[test]
fn one_resident_init_clones_every_container_and_goes_with_the_runtime() {
    require_root();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tokio = own_tokio();
    let before = resident_inits();
    tokio.block_on(async {
        let rt = runtime();
        let mut containers = Vec::new();
        for n in 0..3 {
            let c = rt
                .create(
                    unique_id(&format!("res{n}")),
                    probe_spec(&["/probe", "pause"]),
                )
                .await
                .unwrap();
            let status = std::fs::read_to_string(format!("/proc/{}/status", c.pid())).unwrap();
            let ppid = status
                .lines()
                .find_map(|l| l.strip_prefix("PPid:"))
                .unwrap()
                .trim()
                .to_owned();
            assert_eq!(ppid, std::process::id().to_string(), "the runtime's child");
            containers.push(c);
        }
        let mine: Vec<i32> = resident_inits()
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        assert_eq!(
            mine.len(),
            1,
            "one resident init for three containers: {mine:?}"
        );
        // Killed, it is replaced at the next create. (Waited for first: a
        // request already on its way when it dies fails its create, as the
        // runtime cannot know whether it cloned.)
        let dead = rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(mine[0]).unwrap(),
            rustix::process::PidfdFlags::empty(),
        )
        .unwrap();
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(mine[0]).unwrap(),
            rustix::process::Signal::KILL,
        )
        .unwrap();
        let mut exited = [rustix::event::PollFd::new(
            &dead,
            rustix::event::PollFlags::IN,
        )];
        rustix::event::poll(&mut exited, None).unwrap();
        let mut c = rt
            .create(unique_id("res-again"), probe_spec(&["/probe", "exit", "7"]))
            .await
            .unwrap();
        c.start().await.unwrap();
        assert_eq!(c.wait().await.unwrap().code(), Some(7));
        // The containers the first one cloned live on: their parent-death
        // signal follows the keeper thread, which stays.
        for c in &containers {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", c.pid())).unwrap();
            let state = stat.rsplit(") ").next().unwrap().chars().next().unwrap();
            assert_ne!(
                state,
                'Z',
                "container {} died with the resident init",
                c.pid()
            );
        }
        let now: Vec<i32> = resident_inits()
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        assert_eq!(now.len(), 1, "{now:?}");
        assert_ne!(now[0], mine[0], "a new resident init");
        for c in containers {
            c.kill(libc::SIGKILL).unwrap();
            c.wait().await.unwrap();
        }
        drop(c);
        drop(rt);
    });
    drop(tokio);
    let after: Vec<i32> = resident_inits()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert!(after.is_empty(), "resident init left: {after:?}");
}

/// A resident init that does not answer (stopped here) fails the one
/// create that asked, after the runtime's time limit, instead of holding
/// every create; the next create gets a new resident init, and the
/// containers cloned before live on.
#[test]
fn a_stopped_resident_init_fails_one_create_and_is_replaced() {
    require_root();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tokio = own_tokio();
    tokio.block_on(async {
        let rt = runtime();
        let first = rt
            .create(unique_id("stop1"), probe_spec(&["/probe", "pause"]))
            .await
            .unwrap();
        let stopped = resident_inits();
        assert_eq!(stopped.len(), 1, "{stopped:?}");
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(stopped[0]).unwrap(),
            rustix::process::Signal::STOP,
        )
        .unwrap();
        let err = rt
            .create(unique_id("stop2"), probe_spec(&["/probe", "exit", "0"]))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("resident init"), "{err}");
        let mut c = rt
            .create(unique_id("stop3"), probe_spec(&["/probe", "exit", "3"]))
            .await
            .unwrap();
        c.start().await.unwrap();
        assert_eq!(c.wait().await.unwrap().code(), Some(3));
        let now = resident_inits();
        assert_eq!(now.len(), 1, "{now:?}");
        assert_ne!(now[0], stopped[0]);
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", first.pid())).unwrap();
        let state = stat.rsplit(") ").next().unwrap().chars().next().unwrap();
        assert_ne!(state, 'Z', "the first container lives on");
    });
}

/// A create dropped while its request is with the resident init (stopped
/// here until the request is sent, so that it is unanswered when the
/// future goes): the answer is read by the runtime, not taken for the next
/// create's, and the clone it names is killed and reaped.
#[test]
fn a_create_dropped_mid_request_leaves_no_clone_and_no_stale_answer() {
    require_root();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tokio = own_tokio();
    let before = child_count();
    tokio.block_on(async {
        let rt = runtime();
        // Starts the resident init.
        let mut warm = rt
            .create(unique_id("drop0"), probe_spec(&["/probe", "exit", "0"]))
            .await
            .unwrap();
        warm.start().await.unwrap();
        warm.wait().await.unwrap();
        warm.delete().await.unwrap();
        let resident = resident_inits();
        assert_eq!(resident.len(), 1, "{resident:?}");
        let pid = rustix::process::Pid::from_raw(resident[0]).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
        {
            let create = rt.create(unique_id("drop1"), probe_spec(&["/probe", "pause"]));
            let mut create = std::pin::pin!(std::future::IntoFuture::into_future(create));
            // One poll sends the request; the stopped resident init cannot
            // answer, so the future is pending when it is dropped.
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            let polled = std::future::Future::poll(create.as_mut(), &mut cx);
            assert!(polled.is_pending(), "the create finished without an answer");
            // Going on again, it answers the request of a create that is
            // dropped here, unpolled: the drop reads that answer.
            rustix::process::kill_process(pid, rustix::process::Signal::CONT).unwrap();
        }
        // The next create waits for the abandoned answer to be read, then
        // gets its own clone.
        let mut c = rt
            .create(unique_id("drop2"), probe_spec(&["/probe", "exit", "5"]))
            .await
            .unwrap();
        c.start().await.unwrap();
        assert_eq!(c.wait().await.unwrap().code(), Some(5));
        c.delete().await.unwrap();
        drop(rt);
    });
    // The runtime's shutdown finishes what its tasks left: every child,
    // the abandoned clone among them, is reaped.
    drop(tokio);
    assert_eq!(child_count(), before, "children left");
}
