//! `bpf(2)`: loading a `BPF_PROG_TYPE_CGROUP_DEVICE` program and attaching
//! it to a cgroup v2 directory. The program itself comes from
//! `cgroups::device_program`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Other programs attached above stay in force (all must allow).
const BPF_F_ALLOW_MULTI: u32 = 2;
/// `sizeof(union bpf_attr)` is larger on newer kernels; 128 zeroed bytes
/// cover the fields used here and the kernel accepts trailing zeros.
const ATTR_SIZE: usize = 128;

fn bpf(cmd: libc::c_long, attr: &mut [u8; ATTR_SIZE]) -> io::Result<libc::c_long> {
    // SAFETY: bpf(2) reads (and for some commands writes) at most `size`
    // bytes of `attr`, a live, exclusively borrowed buffer of that size;
    // every pointer stored in it by the callers points at data that
    // outlives the call.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), ATTR_SIZE) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn put_u32(attr: &mut [u8; ATTR_SIZE], at: usize, v: u32) {
    attr[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put_u64(attr: &mut [u8; ATTR_SIZE], at: usize, v: u64) {
    attr[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

/// `BPF_PROG_LOAD` of `insns` (packed `struct bpf_insn`s), then
/// `BPF_PROG_ATTACH` to the cgroup `dir` as its device program.
pub fn attach_device_program(dir: BorrowedFd<'_>, insns: &[u64]) -> io::Result<()> {
    let license = c"Apache-2.0";
    let mut attr = [0u8; ATTR_SIZE];
    // union bpf_attr, BPF_PROG_LOAD: prog_type, insn_cnt, insns, license.
    put_u32(&mut attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE);
    put_u32(
        &mut attr,
        4,
        u32::try_from(insns.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
    );
    put_u64(&mut attr, 8, insns.as_ptr() as u64);
    put_u64(&mut attr, 16, license.as_ptr() as u64);
    let prog = match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => fd,
        Err(e) => {
            // Load again with the verifier's log, for the error message.
            let mut log = vec![0u8; 16 * 1024];
            put_u32(&mut attr, 24, 1);
            put_u32(&mut attr, 28, log.len() as u32);
            put_u64(&mut attr, 32, log.as_mut_ptr() as u64);
            let _ = bpf(BPF_PROG_LOAD, &mut attr);
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let log = String::from_utf8_lossy(&log[..end]);
            return Err(io::Error::new(
                e.kind(),
                format!("BPF_PROG_LOAD: {e}: {}", log.trim()),
            ));
        }
    };
    // SAFETY: BPF_PROG_LOAD returns a new fd that nothing else owns.
    let prog = unsafe { OwnedFd::from_raw_fd(prog as i32) };
    let mut attr = [0u8; ATTR_SIZE];
    // BPF_PROG_ATTACH: target_fd, attach_bpf_fd, attach_type, attach_flags.
    put_u32(&mut attr, 0, dir.as_raw_fd() as u32);
    put_u32(&mut attr, 4, prog.as_raw_fd() as u32);
    put_u32(&mut attr, 8, BPF_CGROUP_DEVICE);
    put_u32(&mut attr, 12, BPF_F_ALLOW_MULTI);
    bpf(BPF_PROG_ATTACH, &mut attr)
        .map_err(|e| io::Error::new(e.kind(), format!("BPF_PROG_ATTACH: {e}")))?;
    // The attachment holds the program; our fd can go.
    Ok(())
}
