//! What every tool shares: its stdio, exit codes, error messages and option parsing.

use std::io::{Read, Write};

/// Success.
pub const OK: i32 = 0;
/// Something went wrong (a file that cannot be read, a failed download).
pub const FAILURE: i32 = 1;
/// Bad usage: an unknown option, a missing operand.
pub const USAGE: i32 = 2;
/// No such tool.
pub const NOT_FOUND: i32 = 127;

/// A tool's stdio, so that tests can run tools on buffers.
pub struct Io<'a> {
    pub stdin: &'a mut dyn Read,
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
}

impl Io<'_> {
    /// Prints `TOOL: MESSAGE` to stderr and returns [`FAILURE`].
    pub fn fail(&mut self, tool: &str, message: impl std::fmt::Display) -> i32 {
        let _ = writeln!(self.stderr, "{tool}: {message}");
        FAILURE
    }
}

/// An I/O error as coreutils says it: `No such file or directory`, without std's
/// ` (os error 44)`.
pub fn describe(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_owned(),
        _ => text,
    }
}

/// A tool's command line syntax, for parsing and for its usage message.
pub struct Syntax {
    /// The tool's name.
    pub tool: &'static str,
    /// Its usage text, starting with `Usage: `.
    pub usage: &'static str,
    /// The single-letter flags it takes.
    pub flags: &'static str,
    /// The single-letter options that take a value (`-O FILE`, `-OFILE`).
    pub valued: &'static str,
}

/// A parsed command line: the options in order, and the operands.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `(letter, value)`; the value only for [`Syntax::valued`] letters.
    pub options: Vec<(char, Option<String>)>,
    /// Everything else, in order.
    pub operands: Vec<String>,
}

impl Options {
    /// Whether `-LETTER` was given.
    pub fn has(&self, letter: char) -> bool {
        self.options.iter().any(|(l, _)| *l == letter)
    }

    /// The value of the last `-LETTER VALUE`.
    pub fn value(&self, letter: char) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(l, _)| *l == letter)
            .and_then(|(_, v)| v.as_deref())
    }
}

impl Syntax {
    /// Parses `args` the way getopt does, options and operands in any order (as busybox
    /// does): clustered flags (`-tlnp`), values attached or not (`-OFILE`, `-O FILE`), `--`
    /// ending the options, `-` an operand. `--help` prints the usage to stdout.
    ///
    /// `Err(code)` means the tool is done: 0 after `--help`, [`USAGE`] after a bad option
    /// (the message and the usage are on stderr).
    pub fn parse(&self, io: &mut Io<'_>, args: &[String]) -> Result<Options, i32> {
        let mut parsed = Options::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            if arg == "--" {
                parsed.operands.extend(args.by_ref().cloned());
                break;
            }
            if arg == "--help" {
                let _ = write!(io.stdout, "{}", self.usage);
                return Err(OK);
            }
            if arg.starts_with("--") {
                return Err(self.bad(io, &format!("unrecognized option '{arg}'")));
            }
            let Some(cluster) = arg.strip_prefix('-').filter(|c| !c.is_empty()) else {
                parsed.operands.push(arg.clone());
                continue;
            };
            for (at, letter) in cluster.char_indices() {
                if self.valued.contains(letter) {
                    let rest = &cluster[at + letter.len_utf8()..];
                    let value = if rest.is_empty() {
                        match args.next() {
                            Some(value) => value.clone(),
                            None => {
                                let message = format!("option requires an argument -- '{letter}'");
                                return Err(self.bad(io, &message));
                            }
                        }
                    } else {
                        rest.to_owned()
                    };
                    parsed.options.push((letter, Some(value)));
                    break;
                }
                if !self.flags.contains(letter) {
                    return Err(self.bad(io, &format!("invalid option -- '{letter}'")));
                }
                parsed.options.push((letter, None));
            }
        }
        Ok(parsed)
    }

    /// Prints `TOOL: MESSAGE` and the usage to stderr; returns [`USAGE`].
    pub fn bad(&self, io: &mut Io<'_>, message: &str) -> i32 {
        let _ = write!(io.stderr, "{}: {message}\n{}", self.tool, self.usage);
        USAGE
    }
}

#[cfg(test)]
pub mod testing {
    use super::Io;

    /// Runs `tool` on `stdin`; returns its exit code, stdout and stderr.
    pub fn run_tool(tool: impl FnOnce(&mut Io<'_>) -> i32, stdin: &[u8]) -> (i32, String, String) {
        let (mut stdin, mut stdout, mut stderr) = (stdin, Vec::new(), Vec::new());
        let code = tool(&mut Io {
            stdin: &mut stdin,
            stdout: &mut stdout,
            stderr: &mut stderr,
        });
        let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("UTF-8 output");
        (code, text(stdout), text(stderr))
    }

    /// `tool`'s `main` on `args`.
    pub fn run(main: fn(&mut Io<'_>, &[String]) -> i32, args: &[&str]) -> (i32, String, String) {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        run_tool(|io| main(io, &args), b"")
    }
}

#[cfg(test)]
mod tests {
    use super::testing::run_tool;
    use super::*;

    const SYNTAX: Syntax = Syntax {
        tool: "t",
        usage: "Usage: t [-ab] [-O FILE] ARGS\n",
        flags: "ab",
        valued: "O",
    };

    fn parse(args: &[&str]) -> (Result<Options, i32>, String, String) {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let mut parsed = None;
        let (_, out, err) = run_tool(
            |io| {
                parsed = Some(SYNTAX.parse(io, &args));
                0
            },
            b"",
        );
        (parsed.expect("parsed"), out, err)
    }

    #[test]
    fn clusters_values_and_operands_in_any_order() {
        let (parsed, _, _) = parse(&["x", "-ab", "-Ofile", "y", "-O", "-", "--", "-a"]);
        let parsed = parsed.expect("valid");
        assert!(parsed.has('a') && parsed.has('b'));
        assert_eq!(parsed.value('O'), Some("-"));
        assert_eq!(parsed.operands, ["x", "y", "-a"]);
        let parsed = parse(&["-aO-", "-"]).0.expect("valid");
        assert_eq!(parsed.value('O'), Some("-"));
        assert_eq!(parsed.operands, ["-"]);
    }

    #[test]
    fn bad_options_are_usage_errors_and_help_is_not() {
        let (parsed, out, err) = parse(&["-ax"]);
        assert_eq!(parsed, Err(USAGE));
        assert_eq!(out, "");
        assert_eq!(
            err,
            "t: invalid option -- 'x'\nUsage: t [-ab] [-O FILE] ARGS\n"
        );
        assert_eq!(parse(&["--all"]).0, Err(USAGE));
        assert_eq!(parse(&["-O"]).0, Err(USAGE));
        let (parsed, out, err) = parse(&["--help"]);
        assert_eq!(
            (parsed, out.as_str(), err.as_str()),
            (Err(OK), SYNTAX.usage, "")
        );
    }

    #[test]
    fn describe_drops_the_os_error_number() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(describe(&e), "No such file or directory");
    }
}
