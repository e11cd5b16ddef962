//! A minimal rtnetlink client (rtnetlink(7)): one `NETLINK_ROUTE` socket,
//! `RTM_NEWLINK` requests that move, rename and set links up or down, each
//! acknowledged (`NLM_F_ACK`) before the next is sent. Safe code only (the
//! socket and its I/O are rustix's); it lives in `sys` because it puts a
//! raw fd number (`IFLA_NET_NS_FD`) into a message.
//!
//! Why not the `rtnetlink`/`netlink-packet-route` crates: the runtime needs
//! four attributes of one message type, synchronously, from a short-lived
//! thread that may sit in another network namespace; those crates bring an
//! async connection task (and its own tokio/futures plumbing) for that.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

const RTM_NEWLINK: u16 = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFF_UP: u32 = 1;
const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;

/// A `NETLINK_ROUTE` socket in the network namespace of the thread that
/// opened it (a socket keeps its namespace for life).
pub struct RouteSocket {
    fd: OwnedFd,
    seq: u32,
}

/// What one `RTM_NEWLINK` changes on the link with index `index`.
#[derive(Default)]
pub struct LinkChange<'a> {
    /// New name (`IFLA_IFNAME`).
    pub name: Option<&'a str>,
    /// Network namespace to move the link to (`IFLA_NET_NS_FD`).
    pub netns: Option<BorrowedFd<'a>>,
    /// `Some(true)` sets `IFF_UP`, `Some(false)` clears it.
    pub up: Option<bool>,
}

impl RouteSocket {
    /// `socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)`.
    pub fn open() -> io::Result<Self> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None,
        )?;
        Ok(RouteSocket { fd, seq: 0 })
    }

    /// The index of the link called `name` in this socket's namespace
    /// (`SIOCGIFINDEX`, netdevice(7)).
    pub fn index_of(&self, name: &str) -> io::Result<u32> {
        Ok(rustix::net::netdevice::name_to_index(&self.fd, name)?)
    }

    /// Sends one `RTM_NEWLINK` for link `index` and waits for its ack.
    pub fn change_link(&mut self, index: u32, change: &LinkChange<'_>) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let msg = encode_newlink(self.seq, index, change);
        let sent = rustix::net::send(&self.fd, &msg, SendFlags::empty())?;
        if sent != msg.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short netlink send",
            ));
        }
        self.wait_ack()
    }

    fn wait_ack(&self) -> io::Result<()> {
        let mut buf = [0u8; 4096];
        loop {
            let (n, _) = rustix::net::recv(&self.fd, &mut buf, RecvFlags::empty())?;
            let mut rest = &buf[..n];
            while rest.len() >= NLMSG_HDRLEN {
                let len = u32::from_ne_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
                let typ = u16::from_ne_bytes(rest[4..6].try_into().expect("2 bytes"));
                let seq = u32::from_ne_bytes(rest[8..12].try_into().expect("4 bytes"));
                if len < NLMSG_HDRLEN || len > rest.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "bad netlink reply",
                    ));
                }
                if typ == NLMSG_ERROR && seq == self.seq && len >= NLMSG_HDRLEN + 4 {
                    let code = i32::from_ne_bytes(
                        rest[NLMSG_HDRLEN..NLMSG_HDRLEN + 4]
                            .try_into()
                            .expect("4 bytes"),
                    );
                    return match code {
                        0 => Ok(()),
                        e => Err(io::Error::from_raw_os_error(-e)),
                    };
                }
                rest = &rest[align4(len).min(rest.len())..];
            }
        }
    }
}

impl AsFd for RouteSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn push_attr(buf: &mut Vec<u8>, typ: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&typ.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(align4(buf.len()), 0);
}

/// `nlmsghdr` + `ifinfomsg` + attributes, as rtnetlink(7) lays them out.
fn encode_newlink(seq: u32, index: u32, change: &LinkChange<'_>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    buf.extend_from_slice(&[0; 4]); // nlmsg_len, filled in below
    buf.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
    buf.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel fills it
    // ifinfomsg: family AF_UNSPEC, pad, type 0, index, flags, change.
    let (flags, mask) = match change.up {
        Some(true) => (IFF_UP, IFF_UP),
        Some(false) => (0, IFF_UP),
        None => (0, 0),
    };
    buf.extend_from_slice(&[0, 0, 0, 0]);
    buf.extend_from_slice(&index.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&mask.to_ne_bytes());
    debug_assert_eq!(buf.len(), NLMSG_HDRLEN + IFINFOMSG_LEN);
    if let Some(name) = change.name {
        let mut z = name.as_bytes().to_vec();
        z.push(0);
        push_attr(&mut buf, IFLA_IFNAME, &z);
    }
    if let Some(ns) = change.netns {
        let raw = u32::try_from(ns.as_raw_fd()).expect("an open fd is not negative");
        push_attr(&mut buf, IFLA_NET_NS_FD, &raw.to_ne_bytes());
    }
    let len = buf.len() as u32;
    buf[0..4].copy_from_slice(&len.to_ne_bytes());
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlink_with_a_name_is_laid_out_as_rtnetlink_wants() {
        let change = LinkChange {
            name: Some("eth1"),
            up: Some(true),
            ..LinkChange::default()
        };
        let msg = encode_newlink(7, 42, &change);
        // 16 header + 16 ifinfomsg + attr (4 + "eth1\0" = 9, padded to 12).
        assert_eq!(msg.len(), 44);
        assert_eq!(u32::from_ne_bytes(msg[0..4].try_into().unwrap()), 44);
        assert_eq!(
            u16::from_ne_bytes(msg[4..6].try_into().unwrap()),
            RTM_NEWLINK
        );
        assert_eq!(u32::from_ne_bytes(msg[8..12].try_into().unwrap()), 7);
        assert_eq!(u32::from_ne_bytes(msg[20..24].try_into().unwrap()), 42);
        assert_eq!(u32::from_ne_bytes(msg[24..28].try_into().unwrap()), IFF_UP);
        assert_eq!(u16::from_ne_bytes(msg[32..34].try_into().unwrap()), 9);
        assert_eq!(
            u16::from_ne_bytes(msg[34..36].try_into().unwrap()),
            IFLA_IFNAME
        );
        assert_eq!(&msg[36..41], b"eth1\0");
    }
}
