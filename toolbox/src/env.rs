//! `env [-i] [-u NAME]... [NAME=VALUE]...`: prints the environment as `NAME=VALUE` lines, with
//! the changes the arguments make (`-i`, or `-`: start empty; `-u`: remove NAME).
//!
//! Running a command with the changed environment is not possible inside a Wasm guest: a
//! command operand is an error (126, as for a command that cannot be run).

use std::ffi::OsString;

use crate::cli::{self, Io, Syntax};

const SYNTAX: Syntax = Syntax {
    tool: "env",
    usage: "Usage: env [-i] [-u NAME]... [NAME=VALUE]...\n\n\
            Print the environment, changed by the options and assignments\n\
            \n\t-i\tStart with an empty environment\n\t-u NAME\tRemove NAME\n",
    flags: "i",
    valued: "u",
};

/// The exit code of a command that was found but cannot be run.
const CANNOT_RUN: i32 = 126;

pub fn main(io: &mut Io<'_>, args: &[String]) -> i32 {
    // Options come first: everything from the first assignment on is operands (a command's
    // own options must not be taken for env's).
    let mut options_end = 0;
    while let Some(arg) = args.get(options_end) {
        if arg == "--" || arg == "-" || !arg.starts_with('-') {
            break;
        }
        // `-u NAME`: NAME is part of the options.
        options_end += if arg.ends_with('u') && !arg.starts_with("--") {
            2
        } else {
            1
        };
    }
    let options_end = options_end.min(args.len());
    let parsed = match SYNTAX.parse(io, &args[..options_end]) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let mut rest = &args[options_end..];
    let mut clear = parsed.has('i');
    if let Some((first, tail)) = rest.split_first() {
        if first == "-" {
            clear = true;
            rest = tail;
        } else if first == "--" {
            rest = tail;
        }
    }

    let mut vars: Vec<(OsString, OsString)> = if clear {
        Vec::new()
    } else {
        std::env::vars_os().collect()
    };
    for (letter, name) in &parsed.options {
        if let ('u', Some(name)) = (letter, name) {
            vars.retain(|(key, _)| key.as_os_str() != name.as_str());
        }
    }
    let mut rest = rest.iter();
    for arg in rest.by_ref() {
        let Some((name, value)) = arg.split_once('=') else {
            let _ = writeln!(
                io.stderr,
                "env: can't execute '{arg}': running commands is not supported in wasmpod's toolbox"
            );
            return CANNOT_RUN;
        };
        match vars.iter_mut().find(|(key, _)| key.as_os_str() == name) {
            Some(var) => var.1 = value.into(),
            None => vars.push((name.into(), value.into())),
        }
    }

    let mut out = Vec::new();
    for (name, value) in &vars {
        out.extend_from_slice(name.to_string_lossy().as_bytes());
        out.push(b'=');
        out.extend_from_slice(value.to_string_lossy().as_bytes());
        out.push(b'\n');
    }
    match io.stdout.write_all(&out) {
        Ok(()) => cli::OK,
        Err(e) => io.fail("env", format_args!("write error: {}", cli::describe(&e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::testing::run;

    #[test]
    fn prints_the_environment() {
        let (code, out, _) = run(main, &[]);
        assert_eq!(code, 0);
        let path = std::env::var("PATH").expect("PATH is set for tests");
        assert!(out.lines().any(|line| line == format!("PATH={path}")));
    }

    #[test]
    fn empty_unset_and_assign() {
        assert_eq!(run(main, &["-i"]), (0, String::new(), String::new()));
        assert_eq!(run(main, &["-i", "A=1", "B=2=3", "A=4"]).1, "A=4\nB=2=3\n");
        assert_eq!(run(main, &["-", "A=1"]).1, "A=1\n");
        let (_, out, _) = run(main, &["-u", "PATH", "X=y"]);
        assert!(!out.lines().any(|l| l.starts_with("PATH=")) && out.ends_with("X=y\n"));
    }

    #[test]
    fn commands_cannot_run_and_bad_options_are_usage_errors() {
        let (code, out, err) = run(main, &["-i", "A=1", "ls", "-l"]);
        assert_eq!((code, out.as_str()), (126, ""));
        assert!(err.starts_with("env: can't execute 'ls'"), "{err}");
        assert_eq!(run(main, &["-x"]).0, 2);
    }
}
