//! `netstat [-tulnap]`: the pod's sockets, as net-tools prints them.
//!
//! The runtime writes the pod's sockets to `/run/wasmpod/pod/sockets`, one record per line,
//! tab-separated: `PROTO\tLOCAL\tREMOTE\tSTATE\tCONTAINER`, e.g.
//! `tcp\t0.0.0.0:80\t0.0.0.0:*\tLISTEN\tweb`.
//!
//! Addresses are always numeric (`-n` is accepted); `-t`/`-u` pick TCP/UDP (default both),
//! `-l` shows listeners only, `-a` everything, neither only the non-listening sockets; `-p` adds
//! the container holding each socket as its "program".

use crate::cli::{self, Io, Syntax};
use crate::ps::read_pod_file;

/// Where the runtime describes the pod's sockets.
pub const SOCKETS: &str = "/run/wasmpod/pod/sockets";

const SYNTAX: Syntax = Syntax {
    tool: "netstat",
    usage: "Usage: netstat [-tulnap]\n\nDisplay the pod's network sockets\n\
            \n\t-l\tDisplay listening sockets only\
            \n\t-a\tDisplay all sockets (default: connected)\
            \n\t-t\tTCP sockets\
            \n\t-u\tUDP sockets\
            \n\t-n\tDon't resolve names (addresses are always numeric)\
            \n\t-p\tDisplay the container holding each socket\n",
    flags: "tulnap",
    valued: "",
};

/// Which sockets to show and how.
#[derive(Debug, Clone, Copy)]
struct Show {
    tcp: bool,
    udp: bool,
    listening: bool,
    connected: bool,
    program: bool,
}

pub fn main(io: &mut Io<'_>, args: &[String]) -> i32 {
    let parsed = match SYNTAX.parse(io, args) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    if let Some(operand) = parsed.operands.first() {
        return SYNTAX.bad(io, &format!("unexpected argument '{operand}'"));
    }
    let (t, u) = (parsed.has('t'), parsed.has('u'));
    let show = Show {
        tcp: t || !u,
        udp: u || !t,
        listening: parsed.has('l') || parsed.has('a'),
        connected: !parsed.has('l') || parsed.has('a'),
        program: parsed.has('p'),
    };
    let text = match read_pod_file(SOCKETS) {
        Ok(text) => text,
        Err(None) => {
            return io.fail(
                "netstat",
                "no socket information (not running under wasmpod)",
            );
        }
        Err(Some(e)) => return io.fail("netstat", format_args!("{SOCKETS}: {e}")),
    };
    let (out, malformed) = render(&text, show);
    let mut code = cli::OK;
    if let Err(e) = io.stdout.write_all(out.as_bytes()) {
        code = io.fail(
            "netstat",
            format_args!("write error: {}", cli::describe(&e)),
        );
    }
    for line in malformed {
        code = io.fail(
            "netstat",
            format_args!("{SOCKETS}:{line}: malformed record"),
        );
    }
    code
}

/// The report of the records in `text`, and the line numbers of malformed ones.
fn render(text: &str, show: Show) -> (String, Vec<usize>) {
    let mut out = String::from(match (show.listening, show.connected) {
        (true, true) => "Active Internet connections (servers and established)\n",
        (true, false) => "Active Internet connections (only servers)\n",
        _ => "Active Internet connections (w/o servers)\n",
    });
    out.push_str(&row(
        show,
        [
            "Proto",
            "Recv-Q",
            "Send-Q",
            "Local Address",
            "Foreign Address",
            "State",
        ],
        "PID/Program name",
    ));
    let mut malformed = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let &[proto, local, remote, state, ref rest @ ..] = fields.as_slice() else {
            malformed.push(number + 1);
            continue;
        };
        let container = rest
            .first()
            .copied()
            .filter(|c| !c.is_empty())
            .unwrap_or("-");
        let wanted_proto = if proto.starts_with("tcp") {
            show.tcp
        } else if proto.starts_with("udp") {
            show.udp
        } else {
            true
        };
        // A UDP socket has no state; net-tools counts an unconnected one as listening.
        let listening = state == "LISTEN" || (proto.starts_with("udp") && remote.ends_with(":*"));
        let wanted_state = if listening {
            show.listening
        } else {
            show.connected
        };
        if wanted_proto && wanted_state {
            out.push_str(&row(
                show,
                [proto, "0", "0", local, remote, state],
                container,
            ));
        }
    }
    (out, malformed)
}

/// One line in net-tools' layout (`%-5s %6s %6s %-23s %-23s %-11s`), trailing blanks trimmed.
fn row(show: Show, [proto, recv, send, local, remote, state]: [&str; 6], program: &str) -> String {
    let mut line = format!("{proto:<5} {recv:>6} {send:>6} {local:<23} {remote:<23} {state:<11}");
    if show.program {
        line.push(' ');
        line.push_str(program);
    }
    let mut line = line.trim_end().to_owned();
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOCKETS: &str = "tcp\t0.0.0.0:80\t0.0.0.0:*\tLISTEN\tweb\n\
                           tcp\t127.0.0.1:80\t127.0.0.1:41234\tESTABLISHED\tweb\n\
                           tcp\t127.0.0.1:41234\t127.0.0.1:80\tESTABLISHED\tsidecar\n";

    fn netstat(flags: &str) -> String {
        let show = Show {
            tcp: flags.contains('t') || !flags.contains('u'),
            udp: flags.contains('u') || !flags.contains('t'),
            listening: flags.contains('l') || flags.contains('a'),
            connected: !flags.contains('l') || flags.contains('a'),
            program: flags.contains('p'),
        };
        let (out, malformed) = render(SOCKETS, show);
        assert!(malformed.is_empty());
        out
    }

    #[test]
    fn listeners() {
        assert_eq!(
            netstat("tln"),
            "Active Internet connections (only servers)\n\
             Proto Recv-Q Send-Q Local Address           Foreign Address         State\n\
             tcp        0      0 0.0.0.0:80              0.0.0.0:*               LISTEN\n"
        );
    }

    #[test]
    fn connections_by_default_and_everything_with_a() {
        let default = netstat("");
        assert!(default.starts_with("Active Internet connections (w/o servers)\n"));
        assert_eq!(default.lines().count(), 4);
        assert!(!default.contains("LISTEN"));
        let all = netstat("an");
        assert!(all.starts_with("Active Internet connections (servers and established)\n"));
        assert_eq!(all.lines().count(), 5);
        assert_eq!(netstat("ul").lines().count(), 2);
    }

    #[test]
    fn programs_are_containers() {
        let out = netstat("tlnp");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[1],
            "Proto Recv-Q Send-Q Local Address           Foreign Address         State       PID/Program name"
        );
        assert_eq!(
            lines[2],
            "tcp        0      0 0.0.0.0:80              0.0.0.0:*               LISTEN      web"
        );
    }

    #[test]
    fn malformed_records_are_reported_by_line() {
        let show = Show {
            tcp: true,
            udp: true,
            listening: true,
            connected: true,
            program: false,
        };
        let (out, malformed) = render("tcp\t1.2.3.4:5\n\ntcp\ta\tb\tLISTEN\n", show);
        assert_eq!(malformed, [1]);
        assert_eq!(out.lines().count(), 3);
    }
}
