//! wasmpod's toolbox: the commands people type into a pod to look around, in one multi-call
//! Wasm component (like busybox).
//!
//! `kubectl exec POD -c C -- CMD ARGS...` runs `CMD` as a Wasm command inside the container;
//! when the container has no such command, wasmpod runs this component with
//! `argv = [CMD, ARGS...]`, sandboxed like any guest: it sees the container's preopened
//! directories, its environment and the pod's network, nothing else.
//!
//! The tool is `argv[0]`'s base name; `toolbox TOOL ARGS...` works too, and `toolbox` alone or
//! `toolbox --list` lists the tools. Exit codes are coreutils': 0 ok, 1 error, 2 bad usage,
//! 127 no such tool; messages go to stderr as `TOOL: ...`.
//!
//! `ps` and `netstat` read what the runtime writes about the pod into `/run/wasmpod/pod/`
//! (see [`ps`] and [`netstat`]): a Wasm guest has no `/proc`.

mod cat;
mod cli;
mod echo;
mod env;
mod ls;
mod netstat;
mod ps;
mod sleep;
mod wget;

use std::io::Write as _;
use std::process::ExitCode;

use cli::Io;

/// One tool: its name and its `main`, which gets the arguments after the tool's name.
type Tool = (&'static str, fn(&mut Io<'_>, &[String]) -> i32);

/// Every tool, in the order `toolbox --list` prints them (the runtime's `wasmpod::toolbox::TOOLS`
/// must say the same; its tests check).
const TOOLS: &[Tool] = &[
    ("ls", ls::main),
    ("cat", cat::main),
    ("env", env::main),
    ("echo", echo::main),
    ("sleep", sleep::main),
    ("ps", ps::main),
    ("netstat", netstat::main),
    ("wget", wget::main),
];

/// The name the toolbox itself answers to as `argv[0]`.
const SELF: &str = "toolbox";

const USAGE: &str = "Usage: toolbox TOOL [ARGS...]
   or: TOOL [ARGS...]     (with argv[0] naming the tool)
   or: toolbox --list

wasmpod's built-in tools, for looking around a pod with `kubectl exec`.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect();
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut stdin = stdin.lock();
    let mut stdout = std::io::BufWriter::with_capacity(32 << 10, stdout.lock());
    let mut stderr = std::io::stderr();
    let mut io = Io {
        stdin: &mut stdin,
        stdout: &mut stdout,
        stderr: &mut stderr,
    };
    let (name, code) = dispatch(&mut io, &args);
    let code = match stdout.flush() {
        Ok(()) => code,
        Err(e) => {
            let _ = writeln!(stderr, "{name}: write error: {}", cli::describe(&e));
            cli::FAILURE
        }
    };
    let code = u8::try_from(code).unwrap_or(1);
    exit_with(code)
}

/// Ends the command with `code`. Rust's std reports only success or failure to a wasip2 host
/// (`wasi:cli/exit.exit` takes a `result`), so a 2 or a 127 would arrive as 1: the toolbox
/// says its code through `exit-with-code`, as a shell's tools do.
#[cfg(target_os = "wasi")]
fn exit_with(code: u8) -> ExitCode {
    if code > 1 {
        wasip2::cli::exit::exit_with_code(code);
    }
    ExitCode::from(code)
}

#[cfg(not(target_os = "wasi"))]
fn exit_with(code: u8) -> ExitCode {
    ExitCode::from(code)
}

/// Runs the tool `args` name: `argv[0]`'s base name, or the next argument when that is the
/// toolbox itself. Returns the name used in messages and the exit code.
fn dispatch<'a>(io: &mut Io<'_>, args: &'a [String]) -> (&'a str, i32) {
    let name = args.first().map_or(SELF, |arg0| tool_name(arg0));
    if name != SELF {
        return (name, run(io, name, &args[1..]));
    }
    match args.get(1).map(String::as_str) {
        None | Some("--help") => {
            let _ = write!(io.stdout, "{USAGE}\nTools:\n");
            list(io);
            (SELF, cli::OK)
        }
        Some("--list") => {
            list(io);
            (SELF, cli::OK)
        }
        Some(option) if option.starts_with('-') && option != "-" => {
            let _ = writeln!(io.stderr, "{SELF}: unrecognized option '{option}'\n{USAGE}");
            (SELF, cli::USAGE)
        }
        Some(_) => {
            let name = tool_name(&args[1]);
            (name, run(io, name, &args[2..]))
        }
    }
}

/// `/usr/bin/ls` → `ls`; `toolbox.wasm` → `toolbox`.
fn tool_name(arg0: &str) -> &str {
    let base = arg0.rsplit('/').next().unwrap_or(arg0);
    base.strip_suffix(".wasm").unwrap_or(base)
}

fn run(io: &mut Io<'_>, name: &str, args: &[String]) -> i32 {
    match TOOLS.iter().find(|(tool, _)| *tool == name) {
        Some((_, main)) => main(io, args),
        None => {
            let _ = writeln!(io.stderr, "{name}: applet not found");
            cli::NOT_FOUND
        }
    }
}

fn list(io: &mut Io<'_>) {
    for (tool, _) in TOOLS {
        let _ = writeln!(io.stdout, "{tool}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cli::testing::run_tool;

    fn toolbox(args: &[&str]) -> (i32, String, String) {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        run_tool(|io| dispatch(io, &args).1, b"")
    }

    #[test]
    fn the_tool_is_argv0s_base_name_or_the_first_argument() {
        assert_eq!(toolbox(&["echo", "hi"]).1, "hi\n");
        assert_eq!(toolbox(&["/bin/echo", "hi"]).1, "hi\n");
        assert_eq!(toolbox(&["toolbox", "echo", "hi"]).1, "hi\n");
        assert_eq!(toolbox(&["/x/toolbox.wasm", "echo", "hi"]).1, "hi\n");
    }

    #[test]
    fn list_prints_every_tool_and_nothing_else() {
        let (code, out, err) = toolbox(&["toolbox", "--list"]);
        assert_eq!((code, err.as_str()), (0, ""));
        assert_eq!(out, "ls\ncat\nenv\necho\nsleep\nps\nnetstat\nwget\n");
        let (code, out, _) = toolbox(&["toolbox"]);
        assert_eq!(code, 0);
        assert!(out.starts_with("Usage: toolbox") && out.ends_with("netstat\nwget\n"));
    }

    #[test]
    fn an_unknown_tool_is_127() {
        assert_eq!(
            toolbox(&["vi", "x"]),
            (127, String::new(), "vi: applet not found\n".into())
        );
        assert_eq!(toolbox(&["toolbox", "vi"]).0, 127);
        assert_eq!(toolbox(&["toolbox", "--frobnicate"]).0, 2);
    }
}
