//! fd passing and the channel ends over a real socketpair (no root).

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use corral_protocol::*;
use rustix::io::{Errno, FdFlags};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use rustix::pipe::{PipeFlags, pipe_with};

fn pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = pipe_with(PipeFlags::CLOEXEC).unwrap();
    rustix::io::ioctl_fionbio(&r, true).unwrap();
    (r, w)
}

/// EOF on a non-blocking read end: every write end is closed.
fn write_closed(read_end: &OwnedFd) -> bool {
    match rustix::io::read(read_end, &mut [0u8; 1]) {
        Ok(0) => true,
        Err(Errno::AGAIN) => false,
        other => panic!("unexpected read result {other:?}"),
    }
}

fn ends() -> (ParentEnd, InitChannel) {
    let (parent, init) = socketpair().unwrap();
    (ParentEnd::from_fd(parent), InitChannel::from_fd(init))
}

/// Sends raw bytes and fds, bypassing every check in `send`.
fn send_raw(sock: BorrowedFd<'_>, bytes: &[u8], fds: &[BorrowedFd<'_>]) {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(64))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() {
        assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
    }
    rustix::net::sendmsg(
        sock,
        &[IoSlice::new(bytes)],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .unwrap();
}

#[test]
fn received_fd_is_cloexec_and_reaches_the_pipe() {
    let (parent, init) = ends();
    let (read_end, write_end) = pipe();
    init.send_console(write_end.as_fd()).unwrap();
    drop(write_end);

    let (msg, fd) = parent.recv().unwrap();
    assert_eq!(msg, ToParent::Console);
    let fd = fd.expect("console carries one fd");
    assert!(
        rustix::io::fcntl_getfd(&fd)
            .unwrap()
            .contains(FdFlags::CLOEXEC)
    );

    rustix::io::write(&fd, b"hi").unwrap();
    let mut buf = [0u8; 2];
    assert_eq!(rustix::io::read(&read_end, &mut buf).unwrap(), 2);
    assert_eq!(&buf, b"hi");
    drop(fd);
    assert!(write_closed(&read_end));
}

#[test]
fn handshake_in_order() {
    let (parent, init) = ends();
    let spec = InitSpec {
        container_id: "c1".into(),
        ..InitSpec::default()
    };
    parent.send_spec(&spec, None).unwrap();
    let (got, fifo) = init.recv_spec().unwrap();
    assert_eq!(got, spec);
    assert!(fifo.is_none());

    let record = LogRecord {
        level: LogLevel::Debug,
        step: Step::Mounts,
        message: "mount".into(),
        path: Some(RawPath(b"/proc".to_vec())),
    };
    init.send_log(&record).unwrap();
    init.send_ready().unwrap();
    assert_eq!(parent.recv().unwrap().0, ToParent::Log(record));
    assert_eq!(parent.recv().unwrap().0, ToParent::Ready);

    parent.send_start().unwrap();
    init.wait_start().unwrap();
    drop(init);
    assert!(matches!(parent.recv(), Err(Error::Closed)));
}

#[test]
fn spec_carries_the_fifo_fd() {
    let (parent, init) = ends();
    let spec = InitSpec {
        start_via: StartVia::Fifo,
        ..InitSpec::default()
    };
    let (read_end, write_end) = pipe();
    parent.send_spec(&spec, Some(write_end.as_fd())).unwrap();
    drop(write_end);
    let (_, fifo) = init.recv_spec().unwrap();
    let fifo = fifo.expect("fifo fd");
    assert!(!write_closed(&read_end));
    drop(fifo);
    assert!(write_closed(&read_end));
}

#[test]
fn spec_fifo_fd_must_match_start_via() {
    let (parent, _init) = ends();
    let (_r, w) = pipe();
    let socket = InitSpec::default();
    let err = parent.send_spec(&socket, Some(w.as_fd())).unwrap_err();
    assert!(matches!(
        err,
        Error::UnexpectedFds {
            kind: Kind::Spec,
            got: 1,
            ..
        }
    ));
    let fifo = InitSpec {
        start_via: StartVia::Fifo,
        ..InitSpec::default()
    };
    let err = parent.send_spec(&fifo, None).unwrap_err();
    assert!(matches!(
        err,
        Error::UnexpectedFds {
            kind: Kind::Spec,
            got: 0,
            ..
        }
    ));
}

#[test]
fn start_before_spec_is_unexpected() {
    let (parent, init) = ends();
    parent.send_start().unwrap();
    assert!(matches!(
        init.recv_spec(),
        Err(Error::Unexpected { kind: Kind::Start })
    ));
}

#[test]
fn spec_while_waiting_for_start_is_unexpected() {
    let (parent, init) = ends();
    parent.send_spec(&InitSpec::default(), None).unwrap();
    assert!(matches!(
        init.wait_start(),
        Err(Error::Unexpected { kind: Kind::Spec })
    ));
}

#[test]
fn wait_start_sees_the_parent_go_away() {
    let (parent, init) = ends();
    drop(parent);
    assert!(matches!(init.wait_start(), Err(Error::Closed)));
}

#[test]
fn init_error_crosses_as_data() {
    let (parent, init) = ends();
    let error = InitError {
        step: Step::Exec,
        path: Some(RawPath(b"/bin/\xffsh".to_vec())),
        errno: Some(4242),
        message: "execve".into(),
    };
    init.send_error(&error).unwrap();
    assert_eq!(parent.recv().unwrap().0, ToParent::Error(error));
}

#[test]
fn nonblocking_socket_with_nothing_to_read_would_block() {
    let (parent, init) = ends();
    rustix::io::ioctl_fionbio(parent.as_fd(), true).unwrap();
    rustix::io::ioctl_fionbio(init.as_fd(), true).unwrap();
    assert!(parent.recv().unwrap_err().is_would_block());
    assert!(recv::<ToInit>(init.as_fd()).unwrap_err().is_would_block());
    assert!(!Error::Closed.is_would_block());
}

#[test]
fn more_fds_than_room_is_control_truncated_and_all_are_closed() {
    let (parent, init) = ends();
    // The control buffer has room for MAX_FDS, plus whatever its alignment
    // padding adds; twice MAX_FDS is well past both.
    let (reads, writes): (Vec<_>, Vec<_>) =
        (0..2 * corral_protocol::MAX_FDS).map(|_| pipe()).unzip();
    let borrowed: Vec<_> = writes.iter().map(|w| w.as_fd()).collect();
    send_raw(
        init.as_fd(),
        &encode_frame(&ToParent::Console).unwrap(),
        &borrowed,
    );
    drop(borrowed);
    drop(writes);
    assert!(matches!(parent.recv(), Err(Error::ControlTruncated)));
    assert!(reads.iter().all(write_closed), "a received fd was leaked");
}

#[test]
fn extra_fds_on_the_wire_are_rejected_and_closed() {
    let (parent, init) = ends();
    let (reads, writes): (Vec<_>, Vec<_>) = (0..2).map(|_| pipe()).unzip();
    let borrowed: Vec<_> = writes.iter().map(|w| w.as_fd()).collect();
    send_raw(
        init.as_fd(),
        &encode_frame(&ToParent::Ready).unwrap(),
        &borrowed,
    );
    drop(borrowed);
    drop(writes);
    let err = parent.recv().unwrap_err();
    assert!(matches!(
        err,
        Error::UnexpectedFds {
            kind: Kind::Ready,
            got: 2,
            ..
        }
    ));
    assert!(reads.iter().all(write_closed));
}

#[test]
fn oversized_datagram_is_rejected() {
    let (parent, init) = ends();
    let mut bytes = vec![VERSION, 17, 0, 0];
    bytes.extend_from_slice(&(MAX_BODY as u32).to_le_bytes());
    bytes.resize(HEADER_LEN + MAX_BODY + 100, b' ');
    send_raw(init.as_fd(), &bytes, &[]);
    let err = parent.recv().unwrap_err();
    assert!(matches!(
        err,
        Error::LengthMismatch {
            declared: MAX_BODY,
            ..
        }
    ));
}

#[test]
fn mount_fds_arrive_in_order_and_a_wrong_index_is_unexpected() {
    let (parent, init) = ends();
    let (read_end, write_end) = pipe();
    parent.send_mount_fd(2, write_end.as_fd()).unwrap();
    parent.send_mount_fd(5, write_end.as_fd()).unwrap();
    drop(write_end);
    let fd = init.recv_mount_fd(2).unwrap();
    assert!(
        rustix::io::fcntl_getfd(&fd)
            .unwrap()
            .contains(FdFlags::CLOEXEC)
    );
    drop(fd);
    // The init waits for op 4; the next frame is for op 5.
    let err = init.recv_mount_fd(4).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unexpected {
                kind: Kind::MountFd
            }
        ),
        "{err:?}"
    );
    // The refused frame's fd was closed with it.
    assert!(write_closed(&read_end));
}

#[test]
fn join_cgroup_carries_its_tasks_files_before_the_spec() {
    let (parent, init) = ends();
    let (read_a, write_a) = pipe();
    let (read_b, write_b) = pipe();
    parent
        .send_join_cgroup(&[write_a.as_fd(), write_b.as_fd()], true)
        .unwrap();
    parent.send_spec(&InitSpec::default(), None).unwrap();
    drop((write_a, write_b));
    let Request::JoinCgroup(join, tasks) = init.recv_request().unwrap() else {
        panic!("join_cgroup should come first");
    };
    assert!(join.unshare_namespace);
    assert_eq!(tasks.len(), 2);
    // In order, close-on-exec, and the very files sent.
    for (fd, read_end) in tasks.iter().zip([&read_a, &read_b]) {
        assert!(
            rustix::io::fcntl_getfd(fd)
                .unwrap()
                .contains(FdFlags::CLOEXEC)
        );
        assert_eq!(rustix::io::write(fd, b"0").unwrap(), 1);
        let mut byte = [0u8; 1];
        assert_eq!(rustix::io::read(read_end, &mut byte).unwrap(), 1);
        assert_eq!(&byte, b"0");
    }
    drop(tasks);
    assert!(write_closed(&read_a) && write_closed(&read_b));
    assert!(matches!(init.recv_request().unwrap(), Request::Create(..)));
}

#[test]
fn join_cgroup_without_files_still_asks_for_the_namespace() {
    let (parent, init) = ends();
    parent.send_join_cgroup(&[], false).unwrap();
    let Request::JoinCgroup(join, tasks) = init.recv_request().unwrap() else {
        panic!("join_cgroup expected");
    };
    assert!(!join.unshare_namespace && tasks.is_empty());
}

#[test]
fn join_cgroup_where_the_spec_is_awaited_is_unexpected() {
    let (parent, init) = ends();
    parent.send_join_cgroup(&[], false).unwrap();
    let err = init.recv_spec().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unexpected {
                kind: Kind::JoinCgroup
            }
        ),
        "{err:?}"
    );
}
