//! Reads just enough of an ELF file to tell whether it is statically linked.
//!
//! A dynamically linked executable names its loader in a `PT_INTERP`
//! program header; a static one (including static-pie) has none (elf(5)).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

const PT_INTERP: u32 = 3;

/// Whether the ELF executable at `path` has no `PT_INTERP` segment, i.e.
/// needs no dynamic loader and so runs in a rootfs without libc.
///
/// Handles 32- and 64-bit, little- and big-endian files.
///
/// # Errors
///
/// `InvalidData` if the file is not ELF or its program headers are cut
/// short; any error from opening or reading it.
pub fn is_statically_linked(path: &Path) -> io::Result<bool> {
    let mut file = File::open(path)?;
    let mut ident = [0u8; 64];
    file.read_exact(&mut ident).map_err(|_| not_elf(path))?;
    if ident[..4] != *b"\x7fELF" {
        return Err(not_elf(path));
    }
    let elf = Header::parse(&ident).ok_or_else(|| not_elf(path))?;
    file.seek(SeekFrom::Start(elf.phoff))?;
    let mut phdr = vec![0u8; usize::from(elf.phentsize)];
    for _ in 0..elf.phnum {
        file.read_exact(&mut phdr).map_err(|_| not_elf(path))?;
        if elf.u32_at(&phdr, 0) == PT_INTERP {
            return Ok(false);
        }
    }
    Ok(true)
}

fn not_elf(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{path:?} is not a complete ELF file"),
    )
}

/// The fields of the ELF header that locate the program headers.
struct Header {
    big_endian: bool,
    phoff: u64,
    phentsize: u16,
    phnum: u16,
}

impl Header {
    fn parse(ident: &[u8; 64]) -> Option<Header> {
        let big_endian = match ident[5] {
            1 => false,
            2 => true,
            _ => return None,
        };
        let mut header = Header {
            big_endian,
            phoff: 0,
            phentsize: 0,
            phnum: 0,
        };
        // Offsets from elf(5): e_phoff, e_phentsize, e_phnum.
        (header.phoff, header.phentsize, header.phnum) = match ident[4] {
            1 => (
                u64::from(header.u32_at(ident, 28)),
                header.u16_at(ident, 42),
                header.u16_at(ident, 44),
            ),
            2 => (
                header.u64_at(ident, 32),
                header.u16_at(ident, 54),
                header.u16_at(ident, 56),
            ),
            _ => return None,
        };
        // p_type is the first 4 bytes of a program header.
        (header.phentsize >= 4).then_some(header)
    }

    fn u16_at(&self, bytes: &[u8], at: usize) -> u16 {
        let raw = [bytes[at], bytes[at + 1]];
        if self.big_endian {
            u16::from_be_bytes(raw)
        } else {
            u16::from_le_bytes(raw)
        }
    }

    fn u32_at(&self, bytes: &[u8], at: usize) -> u32 {
        let raw = bytes[at..at + 4].try_into().expect("slice of 4 bytes");
        if self.big_endian {
            u32::from_be_bytes(raw)
        } else {
            u32::from_le_bytes(raw)
        }
    }

    fn u64_at(&self, bytes: &[u8], at: usize) -> u64 {
        let raw = bytes[at..at + 8].try_into().expect("slice of 8 bytes");
        if self.big_endian {
            u64::from_be_bytes(raw)
        } else {
            u64::from_le_bytes(raw)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_unknown_class_and_endianness() {
        let mut ident = [0u8; 64];
        ident[..4].copy_from_slice(b"\x7fELF");
        ident[4] = 3;
        ident[5] = 1;
        assert!(Header::parse(&ident).is_none());
        ident[4] = 2;
        ident[5] = 0;
        assert!(Header::parse(&ident).is_none());
    }

    #[test]
    fn parse_reads_big_endian_elf32_fields() {
        let mut ident = [0u8; 64];
        ident[..6].copy_from_slice(b"\x7fELF\x01\x02");
        ident[28..32].copy_from_slice(&52u32.to_be_bytes());
        ident[42..44].copy_from_slice(&32u16.to_be_bytes());
        ident[44..46].copy_from_slice(&7u16.to_be_bytes());
        let header = Header::parse(&ident).unwrap();
        assert_eq!((header.phoff, header.phentsize, header.phnum), (52, 32, 7));
    }

    #[test]
    fn non_elf_file_is_invalid_data() {
        let err = is_statically_linked(Path::new("/proc/self/status")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
