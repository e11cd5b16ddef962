//! Random datagrams with random fds through a real socketpair into `recv`:
//! it never panics, and every received fd is closed on every error path.
//!
//! The only test in this binary, so that counting `/proc/self/fd` is not
//! disturbed by tests on other threads.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use corral_protocol::*;
use rustix::io::Errno;
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use rustix::pipe::{PipeFlags, pipe_with};

const ITERATIONS: usize = 20_000;

/// xorshift64*: deterministic, so that a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn valid_frames() -> Vec<Vec<u8>> {
    let spec = InitSpec {
        container_id: "fuzz".into(),
        rootfs: RawPath(b"/r\xff".to_vec()),
        process: ProcessSpec {
            args: vec!["/bin/sh".into()],
            ..ProcessSpec::default()
        },
        ..InitSpec::default()
    };
    let error = InitError {
        step: Step::Exec,
        path: Some(RawPath(vec![0x80])),
        errno: Some(4242),
        message: "execve".into(),
    };
    let log = LogRecord {
        level: LogLevel::Info,
        step: Step::Dev,
        message: "m".into(),
        path: None,
    };
    vec![
        encode_frame(&ToInit::Spec(Box::new(spec))).unwrap(),
        encode_frame(&ToInit::Start).unwrap(),
        encode_frame(&ToInit::StartWith(Box::default())).unwrap(),
        encode_frame(&ToInit::JoinCgroup(JoinCgroup {
            unshare_namespace: true,
        }))
        .unwrap(),
        encode_frame(&ToParent::Ready).unwrap(),
        encode_frame(&ToParent::Error(error)).unwrap(),
        encode_frame(&ToParent::Log(log)).unwrap(),
        encode_frame(&ToParent::Console).unwrap(),
    ]
}

fn set_len(frame: &mut [u8], len: usize) {
    frame[4..8].copy_from_slice(&(len as u32).to_le_bytes());
}

/// One datagram: random, near-valid or valid.
fn datagram(rng: &mut Rng, valid: &[Vec<u8>]) -> Vec<u8> {
    let base = &valid[rng.below(valid.len())];
    match rng.below(200) {
        // Rarely, something around the size limit.
        0 => {
            let body = MAX_BODY - 16 + rng.below(48);
            let mut f = vec![VERSION, [1, 17, 18][rng.below(3)], 0, 0, 0, 0, 0, 0];
            set_len(&mut f, body - 8 + rng.below(16));
            f.extend(std::iter::repeat_n(b' ', body));
            f
        }
        1..40 => {
            let len = rng.below(64);
            rng.bytes(len)
        }
        40..80 => {
            // A plausible header over a random body.
            let kind = [1, 2, 3, 16, 17, 18, 19, 20, rng.next() as u8][rng.below(9)];
            let len = rng.below(256);
            let mut f = vec![VERSION, kind, 0, 0, 0, 0, 0, 0];
            set_len(
                &mut f,
                if rng.below(4) == 0 {
                    rng.below(512)
                } else {
                    len
                },
            );
            if rng.below(8) == 0 {
                f[rng.below(4)] = rng.next() as u8;
            }
            f.extend(rng.bytes(len));
            f
        }
        80..120 => {
            let mut f = base.clone();
            for _ in 0..=rng.below(3) {
                let i = rng.below(f.len());
                f[i] = rng.next() as u8;
            }
            f
        }
        120..150 => {
            let mut f = base.clone();
            f.truncate(rng.below(f.len() + 1));
            f
        }
        150..180 => {
            // Cut JSON with a consistent header: near-valid bodies.
            let mut f = base.clone();
            f.truncate(HEADER_LEN + rng.below(f.len() - HEADER_LEN + 1));
            let len = f.len() - HEADER_LEN;
            set_len(&mut f, len);
            f
        }
        _ => base.clone(),
    }
}

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

fn send_raw(sock: BorrowedFd<'_>, bytes: &[u8], fds: &[BorrowedFd<'_>]) {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
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

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn random_frames_never_panic_and_never_leak_fds() {
    let valid = valid_frames();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (tx, rx) = socketpair().unwrap();
    let before = open_fds();
    let (mut accepted, mut refused) = (0, 0);

    for i in 0..ITERATIONS {
        let bytes = datagram(&mut rng, &valid);
        // Half the frames carry no fd, so that valid ones are often accepted.
        let n = if rng.below(2) == 0 {
            0
        } else {
            rng.below(MAX_FDS + 1)
        };
        let (reads, writes): (Vec<_>, Vec<_>) = (0..n).map(|_| pipe()).unzip();
        let borrowed: Vec<_> = writes.iter().map(|w| w.as_fd()).collect();
        send_raw(tx.as_fd(), &bytes, &borrowed);
        drop(borrowed);
        drop(writes);

        let received = if i % 2 == 0 {
            recv::<ToParent>(rx.as_fd()).map(|(msg, fds)| (msg.kind(), fds))
        } else {
            recv::<ToInit>(rx.as_fd()).map(|(msg, fds)| (msg.kind(), fds))
        };
        match received {
            Ok((kind, fds)) => {
                accepted += 1;
                assert!(
                    kind.fds().allows(fds.len()),
                    "{kind} accepted with {} fds",
                    fds.len()
                );
                assert_eq!(fds.len(), reads.len());
            }
            Err(err) => {
                refused += 1;
                assert!(
                    reads.iter().all(write_closed),
                    "iteration {i}: fd leaked on {err:?} for {bytes:?}"
                );
            }
        }
        assert!(reads.iter().all(write_closed), "iteration {i}: fd leaked");
    }

    assert_eq!(open_fds(), before, "fds leaked over the run");
    // The generator must exercise both paths, or the test proves little.
    assert!(
        accepted > ITERATIONS / 100,
        "only {accepted} frames accepted"
    );
    assert!(refused > ITERATIONS / 2, "only {refused} frames refused");
}
