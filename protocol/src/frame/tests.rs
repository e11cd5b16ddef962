//! Unit tests of the frame format: round trips and every refusal.

use std::os::fd::AsFd;

use rustix::io::Errno;
use rustix::pipe::{PipeFlags, pipe_with};

use super::*;
use crate::messages::*;

fn header(version: u8, kind: u8, reserved: u16, len: u32) -> Vec<u8> {
    let mut h = vec![version, kind];
    h.extend_from_slice(&reserved.to_le_bytes());
    h.extend_from_slice(&len.to_le_bytes());
    h
}

/// A frame with a correct header for `body`.
fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut f = header(VERSION, kind, 0, body.len() as u32);
    f.extend_from_slice(body);
    f
}

/// A pipe whose read end is non-blocking, so that `write_closed` can
/// tell "every write end closed" (EOF) from "still open" (EAGAIN).
fn pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = pipe_with(PipeFlags::CLOEXEC).unwrap();
    rustix::io::ioctl_fionbio(&r, true).unwrap();
    (r, w)
}

fn write_closed(read_end: &OwnedFd) -> bool {
    match rustix::io::read(read_end, &mut [0u8; 1]) {
        Ok(0) => true,
        Err(Errno::AGAIN) => false,
        other => panic!("unexpected read result {other:?}"),
    }
}

fn sample_spec(start_via: StartVia) -> InitSpec {
    InitSpec {
        container_id: "c1".into(),
        rootfs: RawPath(b"/var/lib/\xff\xferoot".to_vec()),
        mounts: vec![MountOp {
            source: Some("proc".into()),
            destination: "/proc".into(),
            fstype: Some("proc".into()),
            flags: 0xe,
            propagation: 0,
            data: None,
            recursive: None,
            detached: false,
            copy_up: false,
        }],
        process: ProcessSpec {
            args: vec!["/bin/sh".into(), RawPath(vec![0x80, b'x'])],
            terminal: true,
            console_size: Some((24, 80)),
            ..ProcessSpec::default()
        },
        start_via,
        ..InitSpec::default()
    }
}

fn init_error() -> InitError {
    InitError {
        step: Step::Mounts,
        path: Some(RawPath(b"/mnt/\xc3\x28".to_vec())),
        errno: Some(4242),
        message: "mount proc".into(),
    }
}

fn round_trip<M: Message + PartialEq + std::fmt::Debug>(msg: M, fds: Vec<OwnedFd>) {
    let n = fds.len();
    let bytes = encode_frame(&msg).unwrap();
    let (back, fds) = decode_frame::<M>(&bytes, fds).unwrap();
    assert_eq!(back, msg);
    assert_eq!(fds.len(), n);
}

#[test]
fn every_message_round_trips() {
    let (_r, w) = pipe();
    round_trip(
        ToInit::Spec(Box::new(sample_spec(StartVia::Socket))),
        vec![],
    );
    round_trip(ToInit::Spec(Box::new(sample_spec(StartVia::Fifo))), vec![w]);
    round_trip(ToInit::Start, vec![]);
    let takeover = ProcessOverride {
        args: vec![RawPath::from("echo"), RawPath(vec![b'x', 0xff])],
        env: Some(vec![RawPath::from("A=1")]),
    };
    round_trip(ToInit::StartWith(Box::new(takeover)), vec![]);
    round_trip(ToInit::StartWith(Box::default()), vec![]);
    round_trip(ToParent::Ready, vec![]);
    round_trip(ToParent::RootfsReady, vec![]);
    let (r1, w1) = pipe();
    let spawn = SpawnRequest {
        clone_flags: 0x2_0000,
        stdio: [true, false, false],
        cgroup_fds: 0,
        cgroup_dir: false,
        unshare_cgroupns: false,
        kill_on_parent_death: true,
        wait_for_maps: false,
    };
    round_trip(ToInit::Spawn(spawn), vec![r1, w1]);
    round_trip(ToParent::Error(init_error()), vec![]);
    let record = LogRecord {
        level: LogLevel::Debug,
        step: Step::Dev,
        message: "mknod".into(),
        path: Some(RawPath(vec![0xff])),
    };
    round_trip(ToParent::Log(record), vec![]);
    let (_r, w) = pipe();
    round_trip(ToParent::Console, vec![w]);
    let (_r, w) = pipe();
    round_trip(ToParent::SeccompListener, vec![w]);
}

#[test]
fn exec_messages_round_trip_with_exactly_one_fd() {
    let exec = ToInit::Exec(Box::new(ExecSpec {
        container_id: "c1".into(),
        target_pid: 42,
        namespaces: 0x6c02_0000,
        process: sample_spec(StartVia::Socket).process,
        kill_on_parent_death: true,
        seccomp: None,
    }));
    let (_r, w) = pipe();
    round_trip(exec.clone(), vec![w]);
    let (_r, w) = pipe();
    round_trip(ToParent::ExecPid(ExecPid { pid: 7 }), vec![w]);
    let bytes = encode_frame(&exec).unwrap();
    assert_eq!(bytes[1], 4);
    assert!(matches!(
        decode_frame::<ToInit>(&bytes, vec![]),
        Err(Error::UnexpectedFds {
            kind: Kind::Exec,
            got: 0,
            ..
        })
    ));
    // Each direction refuses the other's exec kind.
    let pid = encode_frame(&ToParent::ExecPid(ExecPid { pid: 7 })).unwrap();
    assert!(matches!(
        decode_frame::<ToInit>(&pid, vec![]),
        Err(Error::UnknownKind { kind: 20 })
    ));
}

#[test]
fn exec_spec_without_kill_on_parent_death_decodes_as_false() {
    let body = br#"{"container_id":"c","target_pid":1,"namespaces":0,"process":{"args":["/x"],"env":[],"cwd":"/","terminal":false,"console_size":null,"uid":0,"gid":0,"additional_gids":[],"umask":null,"capabilities":null,"no_new_privileges":false,"rlimits":[],"oom_score_adj":null}}"#;
    let (_r, w) = pipe();
    let (msg, _) = decode_frame::<ToInit>(&frame(4, body), vec![w]).unwrap();
    let ToInit::Exec(spec) = msg else {
        panic!("not exec: {msg:?}")
    };
    assert!(!spec.kill_on_parent_death);
}

#[test]
fn init_error_keeps_unknown_errno_and_non_utf8_path() {
    let bytes = encode_frame(&ToParent::Error(init_error())).unwrap();
    let (msg, _) = decode_frame::<ToParent>(&bytes, vec![]).unwrap();
    let ToParent::Error(error) = msg else {
        panic!("not an error: {msg:?}")
    };
    assert_eq!(error.errno, Some(4242));
    assert_eq!(error.path.unwrap().as_bytes(), b"/mnt/\xc3\x28");
}

#[test]
fn bodiless_kinds_have_zero_length() {
    for (msg, kind) in [(ToParent::Ready, 16), (ToParent::Console, 19)] {
        assert_eq!(encode_frame(&msg).unwrap(), header(VERSION, kind, 0, 0));
    }
    assert_eq!(
        encode_frame(&ToInit::Start).unwrap(),
        header(VERSION, 2, 0, 0)
    );
}

#[test]
fn unknown_step_decodes_as_unknown() {
    let body = br#"{"step":"future_step","path":null,"errno":1,"message":""}"#;
    let (msg, _) = decode_frame::<ToParent>(&frame(17, body), vec![]).unwrap();
    assert!(matches!(
        msg,
        ToParent::Error(InitError {
            step: Step::Unknown,
            ..
        })
    ));
}

#[test]
fn oversized_header_length_is_rejected() {
    let bytes = header(VERSION, 16, 0, (MAX_BODY + 1) as u32);
    let err = decode_frame::<ToParent>(&bytes, vec![]).unwrap_err();
    assert!(matches!(err, Error::Oversized { len, max: MAX_BODY } if len == MAX_BODY + 1));
    let bytes = header(VERSION, 16, 0, u32::MAX);
    let err = decode_frame::<ToParent>(&bytes, vec![]).unwrap_err();
    assert!(matches!(err, Error::Oversized { .. }));
}

#[test]
fn body_longer_than_header_says_is_rejected() {
    let mut bytes = header(VERSION, 16, 0, 0);
    bytes.push(b'x');
    let err = decode_frame::<ToParent>(&bytes, vec![]).unwrap_err();
    assert!(matches!(
        err,
        Error::LengthMismatch {
            declared: 0,
            got: 1
        }
    ));
}

#[test]
fn truncated_header_is_rejected() {
    let bytes = header(VERSION, 16, 0, 0);
    for n in 0..HEADER_LEN {
        let err = decode_frame::<ToParent>(&bytes[..n], vec![]).unwrap_err();
        assert!(matches!(err, Error::Truncated { got, need: HEADER_LEN } if got == n));
    }
}

#[test]
fn truncated_body_is_rejected() {
    let bytes = encode_frame(&ToParent::Error(init_error())).unwrap();
    let cut = &bytes[..bytes.len() - 1];
    let err = decode_frame::<ToParent>(cut, vec![]).unwrap_err();
    assert!(
        matches!(err, Error::Truncated { got, need } if got == cut.len() && need == bytes.len())
    );
}

#[test]
fn unknown_version_is_rejected() {
    let err = decode_frame::<ToParent>(&header(VERSION + 1, 16, 0, 0), vec![]).unwrap_err();
    assert!(matches!(err, Error::UnknownVersion { version } if version == VERSION + 1));
    let err = decode_frame::<ToParent>(&header(0, 16, 0, 0), vec![]).unwrap_err();
    assert!(matches!(err, Error::UnknownVersion { version: 0 }));
}

#[test]
fn unknown_kind_is_rejected() {
    for kind in [0, 9, 15, 24, 255] {
        let err = decode_frame::<ToParent>(&frame(kind, b""), vec![]).unwrap_err();
        assert!(matches!(err, Error::UnknownKind { kind: k } if k == kind));
        let err = decode_frame::<ToInit>(&frame(kind, b""), vec![]).unwrap_err();
        assert!(matches!(err, Error::UnknownKind { kind: k } if k == kind));
    }
}

#[test]
fn hook_messages_round_trip_bodiless() {
    let done = encode_frame(&ToInit::HooksDone).unwrap();
    let (msg, _) = decode_frame::<ToInit>(&done, vec![]).unwrap();
    assert_eq!(msg, ToInit::HooksDone);
    let run = encode_frame(&ToParent::RunHooks).unwrap();
    let (msg, _) = decode_frame::<ToParent>(&run, vec![]).unwrap();
    assert_eq!(msg, ToParent::RunHooks);
    let err = decode_frame::<ToParent>(&frame(21, b"{}"), vec![]).unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
}

#[test]
fn mount_fd_carries_its_op_index_and_exactly_one_fd() {
    let frame = encode_frame(&ToInit::MountFd(MountFd { mount: 7 })).unwrap();
    let err = decode_frame::<ToInit>(&frame, vec![]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnexpectedFds {
                kind: Kind::MountFd,
                got: 0,
                ..
            }
        ),
        "{err:?}"
    );
    let (r, _w) = pipe();
    let (msg, fds) = decode_frame::<ToInit>(&frame, vec![r]).unwrap();
    assert_eq!(msg, ToInit::MountFd(MountFd { mount: 7 }));
    assert_eq!(fds.len(), 1);
}

#[test]
fn kind_of_the_other_direction_is_unknown() {
    let start = encode_frame(&ToInit::Start).unwrap();
    let err = decode_frame::<ToParent>(&start, vec![]).unwrap_err();
    assert!(matches!(err, Error::UnknownKind { kind: 2 }));
    let ready = encode_frame(&ToParent::Ready).unwrap();
    let err = decode_frame::<ToInit>(&ready, vec![]).unwrap_err();
    assert!(matches!(err, Error::UnknownKind { kind: 16 }));
}

#[test]
fn nonzero_reserved_field_is_rejected() {
    let err = decode_frame::<ToParent>(&header(VERSION, 16, 0x0100, 0), vec![]).unwrap_err();
    assert!(matches!(err, Error::Reserved { value: 0x0100 }));
}

#[test]
fn body_on_a_bodiless_kind_is_rejected() {
    let err = decode_frame::<ToInit>(&frame(2, b"{}"), vec![]).unwrap_err();
    assert!(matches!(
        err,
        Error::Decode {
            kind: Kind::Start,
            ..
        }
    ));
}

#[test]
fn invalid_json_is_a_decode_error() {
    let err = decode_frame::<ToParent>(&frame(18, b"{\"level\":"), vec![]).unwrap_err();
    assert!(matches!(
        err,
        Error::Decode {
            kind: Kind::Log,
            ..
        }
    ));
    let err = decode_frame::<ToInit>(&frame(1, b"[]"), vec![]).unwrap_err();
    assert!(matches!(
        err,
        Error::Decode {
            kind: Kind::Spec,
            ..
        }
    ));
}

#[test]
fn wrong_fd_count_is_rejected_and_closes_the_fds() {
    let cases: [(Vec<u8>, usize, Kind); 6] = [
        (encode_frame(&ToParent::Ready).unwrap(), 1, Kind::Ready),
        (
            encode_frame(&ToParent::RootfsReady).unwrap(),
            1,
            Kind::RootfsReady,
        ),
        (
            encode_frame(&ToParent::SeccompListener).unwrap(),
            0,
            Kind::SeccompListener,
        ),
        (encode_frame(&ToParent::Console).unwrap(), 0, Kind::Console),
        (encode_frame(&ToParent::Console).unwrap(), 2, Kind::Console),
        (
            encode_frame(&ToParent::Error(init_error())).unwrap(),
            3,
            Kind::Error,
        ),
    ];
    for (bytes, n, kind) in cases {
        let (reads, writes): (Vec<_>, Vec<_>) = (0..n).map(|_| pipe()).unzip();
        let err = decode_frame::<ToParent>(&bytes, writes).unwrap_err();
        assert!(matches!(err, Error::UnexpectedFds { kind: k, got, .. } if k == kind && got == n));
        assert!(reads.iter().all(write_closed), "a received fd was leaked");
    }
    let spec = encode_frame(&ToInit::Spec(Box::new(sample_spec(StartVia::Fifo)))).unwrap();
    let (reads, writes): (Vec<_>, Vec<_>) = (0..2).map(|_| pipe()).unzip();
    let err = decode_frame::<ToInit>(&spec, writes).unwrap_err();
    assert!(matches!(
        err,
        Error::UnexpectedFds {
            kind: Kind::Spec,
            got: 2,
            ..
        }
    ));
    assert!(reads.iter().all(write_closed));
}

#[test]
fn every_rejection_closes_the_fds() {
    let bad: [&[u8]; 4] = [
        &header(VERSION, 19, 0, 5),
        &header(9, 19, 0, 0),
        &header(VERSION, 19, 1, 0),
        &header(VERSION, 1, 0, 0),
    ];
    for bytes in bad {
        let (read, write) = pipe();
        assert!(decode_frame::<ToParent>(bytes, vec![write]).is_err());
        assert!(write_closed(&read));
    }
}

#[test]
fn send_refuses_a_wrong_fd_count_before_sending() {
    let (a, b) = socketpair().unwrap();
    rustix::io::ioctl_fionbio(&b, true).unwrap();
    let (_r, w) = pipe();
    let err = send(a.as_fd(), &ToParent::Ready, &[w.as_fd()]).unwrap_err();
    assert!(matches!(
        err,
        Error::UnexpectedFds {
            kind: Kind::Ready,
            got: 1,
            ..
        }
    ));
    let err = send(a.as_fd(), &ToParent::Console, &[]).unwrap_err();
    assert!(matches!(
        err,
        Error::UnexpectedFds {
            kind: Kind::Console,
            got: 0,
            ..
        }
    ));
    assert!(recv::<ToParent>(b.as_fd()).unwrap_err().is_would_block());
}

#[test]
fn send_refuses_an_oversized_body_before_sending() {
    let (a, b) = socketpair().unwrap();
    rustix::io::ioctl_fionbio(&b, true).unwrap();
    let error = InitError {
        message: "x".repeat(MAX_BODY),
        ..init_error()
    };
    let err = send(a.as_fd(), &ToParent::Error(error), &[]).unwrap_err();
    assert!(matches!(err, Error::Oversized { max: MAX_BODY, .. }));
    assert!(recv::<ToParent>(b.as_fd()).unwrap_err().is_would_block());
}

#[test]
fn largest_body_fits_the_socket() {
    let (a, b) = socketpair().unwrap();
    // `"message":"` and friends take some of the budget.
    let overhead = encode_frame(&ToParent::Error(InitError {
        message: String::new(),
        ..init_error()
    }))
    .unwrap()
    .len()
        - HEADER_LEN;
    let error = InitError {
        message: "x".repeat(MAX_BODY - overhead),
        ..init_error()
    };
    send(a.as_fd(), &ToParent::Error(error.clone()), &[]).unwrap();
    let (msg, _) = recv::<ToParent>(b.as_fd()).unwrap();
    assert_eq!(msg, ToParent::Error(error));
}

#[test]
fn closed_peer_is_closed() {
    let (a, b) = socketpair().unwrap();
    drop(a);
    assert!(matches!(recv::<ToInit>(b.as_fd()), Err(Error::Closed)));
}
