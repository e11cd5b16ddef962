//! The command lines a container farm repeats (`run`, `create`, `start`,
//! `state`, `kill`, `delete` with runc's usual flags), parsed without
//! building clap's whole command tree.
//!
//! Building that tree and parsing with it takes about 0.3 ms of a
//! `corral run` that lasts 5 ms. [`parse`] accepts only plain, complete
//! command lines and returns `None` for everything else (help, version,
//! errors, other subcommands, repeated or unusual flags), which then goes
//! to clap. The tests check that whenever it answers, clap gives the same
//! `Cli` for the same words.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::{Cli, Command, CreateArgs, DEFAULT_BUNDLE, DEFAULT_LOG_FORMAT, DEFAULT_ROOT};

/// Which subcommand, with the flags it takes besides the global ones.
#[derive(Clone, Copy, PartialEq)]
enum Sub {
    Create,
    Run,
    Start,
    State,
    Kill,
    Delete,
}

impl Sub {
    fn of(word: &str) -> Option<Sub> {
        Some(match word {
            "create" => Sub::Create,
            "run" => Sub::Run,
            "start" => Sub::Start,
            "state" => Sub::State,
            "kill" => Sub::Kill,
            "delete" => Sub::Delete,
            _ => return None,
        })
    }

    /// Positionals: at least, at most.
    fn positionals(self) -> (usize, usize) {
        match self {
            Sub::Kill => (1, 2),
            _ => (1, 1),
        }
    }
}

/// Everything a command line may set; each at most once.
#[derive(Default)]
struct Seen {
    root: Option<PathBuf>,
    log: Option<PathBuf>,
    log_format: Option<String>,
    debug: bool,
    bundle: Option<PathBuf>,
    pid_file: Option<PathBuf>,
    console_socket: Option<PathBuf>,
    no_pivot: bool,
    no_new_keyring: bool,
    preserve_fds: Option<u32>,
    detach: bool,
    force: bool,
    all: bool,
    positionals: Vec<String>,
}

/// The flag a word names, if this parser knows it where it stands.
#[derive(Clone, Copy, PartialEq)]
enum Flag {
    Root,
    Log,
    LogFormat,
    Debug,
    Bundle,
    PidFile,
    ConsoleSocket,
    NoPivot,
    NoNewKeyring,
    PreserveFds,
    Detach,
    Force,
    All,
}

impl Flag {
    fn long(name: &str, sub: Option<Sub>) -> Option<Flag> {
        let creates = matches!(sub, Some(Sub::Create | Sub::Run));
        Some(match name {
            "root" => Flag::Root,
            "log" => Flag::Log,
            "log-format" => Flag::LogFormat,
            "debug" => Flag::Debug,
            "bundle" if creates => Flag::Bundle,
            "pid-file" if creates => Flag::PidFile,
            "console-socket" if creates => Flag::ConsoleSocket,
            "no-pivot" if creates => Flag::NoPivot,
            "no-new-keyring" if creates => Flag::NoNewKeyring,
            "preserve-fds" if creates => Flag::PreserveFds,
            "detach" if sub == Some(Sub::Run) => Flag::Detach,
            "force" if sub == Some(Sub::Delete) => Flag::Force,
            "all" if sub == Some(Sub::Kill) => Flag::All,
            _ => return None,
        })
    }

    fn short(c: &str, sub: Option<Sub>) -> Option<Flag> {
        Some(match (c, sub) {
            ("b", Some(Sub::Create | Sub::Run)) => Flag::Bundle,
            ("d", Some(Sub::Run)) => Flag::Detach,
            ("f", Some(Sub::Delete)) => Flag::Force,
            ("a", Some(Sub::Kill)) => Flag::All,
            _ => return None,
        })
    }

    fn takes_value(self) -> bool {
        !matches!(
            self,
            Flag::Debug
                | Flag::NoPivot
                | Flag::NoNewKeyring
                | Flag::Detach
                | Flag::Force
                | Flag::All
        )
    }
}

/// Sets `flag` once; `None` if it was set before or its value is one
/// clap would refuse or read differently.
fn set(seen: &mut Seen, flag: Flag, value: Option<&str>) -> Option<()> {
    fn once<T>(slot: &mut Option<T>, v: T) -> Option<()> {
        slot.is_none().then(|| *slot = Some(v))
    }
    fn once_bool(slot: &mut bool) -> Option<()> {
        (!*slot).then(|| *slot = true)
    }
    match (flag, value) {
        (Flag::Root, Some(v)) => once(&mut seen.root, PathBuf::from(v)),
        (Flag::Log, Some(v)) => once(&mut seen.log, PathBuf::from(v)),
        (Flag::LogFormat, Some(v @ ("text" | "json"))) => once(&mut seen.log_format, v.to_owned()),
        (Flag::Bundle, Some(v)) => once(&mut seen.bundle, PathBuf::from(v)),
        (Flag::PidFile, Some(v)) => once(&mut seen.pid_file, PathBuf::from(v)),
        (Flag::ConsoleSocket, Some(v)) => once(&mut seen.console_socket, PathBuf::from(v)),
        (Flag::PreserveFds, Some(v)) if v.bytes().all(|b| b.is_ascii_digit()) => {
            once(&mut seen.preserve_fds, v.parse().ok()?)
        }
        (Flag::Debug, None) => once_bool(&mut seen.debug),
        (Flag::NoPivot, None) => once_bool(&mut seen.no_pivot),
        (Flag::NoNewKeyring, None) => once_bool(&mut seen.no_new_keyring),
        (Flag::Detach, None) => once_bool(&mut seen.detach),
        (Flag::Force, None) => once_bool(&mut seen.force),
        (Flag::All, None) => once_bool(&mut seen.all),
        _ => None,
    }
}

/// `argv` (with the program name first) as clap would parse it, or `None`
/// where this parser does not answer for clap.
pub(crate) fn parse(argv: &[OsString]) -> Option<Cli> {
    let mut words = Vec::with_capacity(argv.len());
    for arg in argv.get(1..)? {
        words.push(arg.to_str()?);
    }
    let mut seen = Seen::default();
    let mut sub = None;
    let mut i = 0;
    while let Some(&word) = words.get(i) {
        i += 1;
        let (flag, inline) = if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (long, None),
            };
            (Flag::long(name, sub)?, inline)
        } else if let Some(short) = word.strip_prefix('-') {
            (Flag::short(short, sub)?, None)
        } else if sub.is_none() {
            sub = Some(Sub::of(word)?);
            continue;
        } else {
            seen.positionals.push(word.to_owned());
            continue;
        };
        let value = match (flag.takes_value(), inline) {
            (true, Some(v)) => Some(v),
            (true, None) => {
                let next = *words.get(i)?;
                i += 1;
                Some(next)
            }
            (false, None) => None,
            (false, Some(_)) => return None,
        };
        // Empty values and ones that look like flags are clap's to judge.
        if value.is_some_and(|v| v.is_empty() || v.starts_with('-')) {
            return None;
        }
        set(&mut seen, flag, value)?;
    }
    let sub = sub?;
    let (least, most) = sub.positionals();
    let n = seen.positionals.len();
    if n < least || n > most {
        return None;
    }
    let mut positionals = std::mem::take(&mut seen.positionals).into_iter();
    let id = positionals.next()?;
    let create = |seen: &mut Seen, id: String| CreateArgs {
        bundle: seen
            .bundle
            .take()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BUNDLE)),
        pid_file: seen.pid_file.take(),
        console_socket: seen.console_socket.take(),
        no_pivot: seen.no_pivot,
        no_new_keyring: seen.no_new_keyring,
        preserve_fds: seen.preserve_fds.unwrap_or(0),
        id,
    };
    let command = match sub {
        Sub::Create => Command::Create(create(&mut seen, id)),
        Sub::Run => Command::Run {
            create: create(&mut seen, id),
            detach: seen.detach,
        },
        Sub::Start => Command::Start { id },
        Sub::State => Command::State { id },
        Sub::Kill => Command::Kill {
            all: seen.all,
            id,
            signal: positionals.next(),
        },
        Sub::Delete => Command::Delete {
            force: seen.force,
            id,
        },
    };
    Some(Cli {
        root: seen.root.unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT)),
        log: seen.log,
        log_format: seen
            .log_format
            .unwrap_or_else(|| DEFAULT_LOG_FORMAT.to_owned()),
        debug: seen.debug,
        systemd_cgroup: false,
        rootless: None,
        command,
    })
}

#[cfg(test)]
mod tests {
    use super::parse;
    use crate::Cli;
    use clap::Parser;
    use std::ffi::OsString;

    fn argv(words: &[&str]) -> Vec<OsString> {
        std::iter::once("corral")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// Whenever the quick parser answers, clap parses the same words to the
    /// same `Cli`.
    fn agrees(words: &[&str]) -> bool {
        let args = argv(words);
        let Some(quick) = parse(&args) else {
            return false;
        };
        let clap = Cli::try_parse_from(&args)
            .unwrap_or_else(|e| panic!("quick parser accepted {words:?}, clap refused: {e}"));
        assert_eq!(
            format!("{quick:?}"),
            format!("{clap:?}"),
            "the two parsers differ on {words:?}"
        );
        true
    }

    #[test]
    fn the_usual_command_lines_take_the_quick_path_and_agree_with_clap() {
        let usual: &[&[&str]] = &[
            &["run", "c1"],
            &["run", "-d", "c1"],
            &["run", "--bundle", "/b", "c1"],
            &["run", "-b", "/b", "--detach", "c1"],
            &["--root", "/r", "run", "--bundle=/b", "c1"],
            &[
                "--root=/r",
                "--log",
                "/l",
                "--log-format",
                "json",
                "create",
                "c1",
            ],
            &[
                "create",
                "--bundle",
                "/b",
                "--pid-file",
                "/p",
                "--console-socket",
                "/s",
                "c1",
            ],
            &[
                "create",
                "--no-pivot",
                "--no-new-keyring",
                "--preserve-fds",
                "0",
                "c1",
            ],
            &["run", "c1", "--root", "/r", "--debug"],
            &["start", "c1"],
            &["state", "c1"],
            &["kill", "c1"],
            &["kill", "c1", "KILL"],
            &["kill", "--all", "c1", "9"],
            &["kill", "-a", "c1", "SIGTERM"],
            &["delete", "c1"],
            &["delete", "-f", "c1"],
            &["--debug", "delete", "--force", "c1"],
        ];
        for words in usual {
            assert!(agrees(words), "{words:?} should take the quick path");
        }
    }

    #[test]
    fn anything_unusual_is_left_to_clap() {
        let unusual: &[&[&str]] = &[
            &[],
            &["--help"],
            &["run", "--help"],
            &["--version"],
            &["list"],
            &["exec", "c1", "true"],
            &["run"],
            &["run", "c1", "c2"],
            &["run", "--bundle"],
            &["run", "--bundle=", "c1"],
            &["run", "--bundle", "-x", "c1"],
            &["run", "-db", "/b", "c1"],
            &["run", "--detach=true", "c1"],
            &["run", "-d", "-d", "c1"],
            &["--root", "/a", "run", "--root", "/b", "c1"],
            &["run", "--", "c1"],
            &["run", "--log-format", "xml", "c1"],
            &["run", "--preserve-fds", "+1", "c1"],
            &["create", "-d", "c1"],
            &["delete", "-a", "c1"],
            &["kill", "c1", "-9"],
            &["--systemd-cgroup", "run", "c1"],
            &["--rootless", "run", "c1"],
            &["start", "c1", "c2"],
        ];
        for words in unusual {
            assert!(parse(&argv(words)).is_none(), "{words:?} should go to clap");
        }
    }

    /// Random command lines from a vocabulary of flags, values and
    /// subcommands: wherever the quick parser answers, clap agrees.
    #[test]
    fn random_command_lines_agree_with_clap_wherever_the_quick_parser_answers() {
        const WORDS: &[&str] = &[
            "run",
            "create",
            "start",
            "state",
            "kill",
            "delete",
            "list",
            "exec",
            "c1",
            "c2",
            "KILL",
            "9",
            "-9",
            "--root",
            "--root=/r",
            "/r",
            "--log",
            "--log=/l",
            "--log-format",
            "--log-format=json",
            "json",
            "text",
            "xml",
            "--debug",
            "--debug=1",
            "-b",
            "--bundle",
            "--bundle=/b",
            "/b",
            "--pid-file",
            "--console-socket",
            "--no-pivot",
            "--no-new-keyring",
            "--preserve-fds",
            "--preserve-fds=2",
            "0",
            "-d",
            "--detach",
            "-f",
            "--force",
            "-a",
            "--all",
            "--",
            "-",
            "-x",
            "--help",
            "",
            "--root=",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) % n as u64) as usize
        };
        let mut answered = 0;
        for _ in 0..20_000 {
            let len = 1 + next(7);
            let words: Vec<&str> = (0..len).map(|_| WORDS[next(WORDS.len())]).collect();
            if agrees(&words) {
                answered += 1;
            }
        }
        // The vocabulary makes valid lines often enough for the check to bite.
        assert!(
            answered > 100,
            "only {answered} random lines took the quick path"
        );
    }
}
