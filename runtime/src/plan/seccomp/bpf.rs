//! Classic BPF for seccomp: the few instructions a filter needs, and an
//! assembler that resolves forward jumps by label.
//!
//! A conditional jump (`jeq`, `jgt`, `jge`) carries 8-bit offsets, so its
//! targets must lie within 255 instructions; the compiler only aims those
//! at nearby labels (the end of a rule, the next dispatch entry) and
//! reaches far blocks with `ja`, whose offset is 32 bits. The assembler
//! checks both and the kernel's `BPF_MAXINSNS` (4096) limit, so an
//! oversized profile is an error here, not an `EINVAL` from the init.
//! Backward jumps do not exist in classic BPF, and labels must be bound
//! after their uses.

/// `BPF_MAXINSNS` (linux/bpf_common.h): the kernel's limit per program.
pub(crate) const MAX_INSNS: usize = 4096;

/// `BPF_LD | BPF_W | BPF_ABS`: `A = *(u32 *)(data + k)`.
pub(crate) const LD_W_ABS: u16 = 0x20;
/// `BPF_ALU | BPF_AND | BPF_K`: `A &= k`.
pub(crate) const ALU_AND_K: u16 = 0x54;
/// `BPF_JMP | BPF_JA`: `pc += k`.
pub(crate) const JMP_JA: u16 = 0x05;
/// `BPF_JMP | BPF_JEQ | BPF_K`: `pc += (A == k) ? jt : jf`.
pub(crate) const JMP_JEQ_K: u16 = 0x15;
/// `BPF_JMP | BPF_JGT | BPF_K`: `pc += (A > k) ? jt : jf`, unsigned.
pub(crate) const JMP_JGT_K: u16 = 0x25;
/// `BPF_JMP | BPF_JGE | BPF_K`: `pc += (A >= k) ? jt : jf`, unsigned.
pub(crate) const JMP_JGE_K: u16 = 0x35;
/// `BPF_RET | BPF_K`: return `k`.
pub(crate) const RET_K: u16 = 0x06;

/// One `struct sock_filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl Insn {
    /// The wire form of `corral_protocol::SeccompProgram`.
    pub(crate) fn pack(self) -> u64 {
        u64::from(self.code)
            | u64::from(self.jt) << 16
            | u64::from(self.jf) << 24
            | u64::from(self.k) << 32
    }

    #[cfg(test)]
    pub(crate) fn unpack(v: u64) -> Insn {
        Insn {
            code: v as u16,
            jt: (v >> 16) as u8,
            jf: (v >> 24) as u8,
            k: (v >> 32) as u32,
        }
    }
}

/// A jump target, bound later with [`Asm::bind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Label(usize);

/// Where a conditional jump goes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum To {
    /// The next instruction (offset 0).
    Next,
    /// A label.
    L(Label),
}

#[derive(Debug)]
enum Op {
    Plain(Insn),
    Ja(Label),
    Cond { code: u16, k: u32, jt: To, jf: To },
    Bind(Label),
}

/// Why a program cannot be assembled.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AsmError {
    /// More than [`MAX_INSNS`] instructions.
    TooLong(usize),
    /// A conditional jump further than 255 instructions (a compiler bug).
    FarJump,
    /// A label used but never bound, or bound before a use (a compiler bug).
    BadLabel,
}

/// Instructions with symbolic forward jumps.
#[derive(Debug, Default)]
pub(crate) struct Asm {
    ops: Vec<Op>,
    labels: usize,
}

impl Asm {
    pub(crate) fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    pub(crate) fn bind(&mut self, l: Label) {
        self.ops.push(Op::Bind(l));
    }

    pub(crate) fn load(&mut self, offset: u32) {
        self.plain(LD_W_ABS, offset);
    }

    pub(crate) fn and(&mut self, k: u32) {
        self.plain(ALU_AND_K, k);
    }

    pub(crate) fn ret(&mut self, k: u32) {
        self.plain(RET_K, k);
    }

    pub(crate) fn ja(&mut self, l: Label) {
        self.ops.push(Op::Ja(l));
    }

    pub(crate) fn jeq(&mut self, k: u32, jt: To, jf: To) {
        self.ops.push(Op::Cond {
            code: JMP_JEQ_K,
            k,
            jt,
            jf,
        });
    }

    pub(crate) fn jgt(&mut self, k: u32, jt: To, jf: To) {
        self.ops.push(Op::Cond {
            code: JMP_JGT_K,
            k,
            jt,
            jf,
        });
    }

    pub(crate) fn jge(&mut self, k: u32, jt: To, jf: To) {
        self.ops.push(Op::Cond {
            code: JMP_JGE_K,
            k,
            jt,
            jf,
        });
    }

    /// `if A <code> k goto far` with a far target: the short jump skips
    /// an unconditional `ja`.
    pub(crate) fn jump_if(&mut self, code: u16, k: u32, far: Label) {
        let skip = self.label();
        self.ops.push(Op::Cond {
            code,
            k,
            jt: To::Next,
            jf: To::L(skip),
        });
        self.ja(far);
        self.bind(skip);
    }

    fn plain(&mut self, code: u16, k: u32) {
        self.ops.push(Op::Plain(Insn {
            code,
            jt: 0,
            jf: 0,
            k,
        }));
    }

    /// Resolves the labels into offsets.
    pub(crate) fn finish(self) -> Result<Vec<Insn>, AsmError> {
        let mut at = vec![None; self.labels];
        let mut n = 0usize;
        for op in &self.ops {
            match op {
                Op::Bind(l) => at[l.0] = Some(n),
                _ => n += 1,
            }
        }
        if n > MAX_INSNS {
            return Err(AsmError::TooLong(n));
        }
        let mut out = Vec::with_capacity(n);
        for op in self.ops {
            let pc = out.len();
            // Offsets count from the instruction after the jump.
            let offset = |l: Label| -> Result<usize, AsmError> {
                at[l.0]
                    .and_then(|target| target.checked_sub(pc + 1))
                    .ok_or(AsmError::BadLabel)
            };
            let short = |t: To| -> Result<u8, AsmError> {
                match t {
                    To::Next => Ok(0),
                    To::L(l) => u8::try_from(offset(l)?).map_err(|_| AsmError::FarJump),
                }
            };
            out.push(match op {
                Op::Bind(_) => continue,
                Op::Plain(i) => i,
                Op::Ja(l) => Insn {
                    code: JMP_JA,
                    jt: 0,
                    jf: 0,
                    k: u32::try_from(offset(l)?).expect("under MAX_INSNS"),
                },
                Op::Cond { code, k, jt, jf } => Insn {
                    code,
                    jt: short(jt)?,
                    jf: short(jf)?,
                    k,
                },
            });
        }
        Ok(out)
    }
}
