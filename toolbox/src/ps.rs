//! `ps`: the pod's containers, one line each, as `NAME STATE RESTARTS IMAGE`.
//!
//! A Wasm guest has no `/proc`: the runtime writes what it knows about the pod's containers to
//! `/run/wasmpod/pod/containers`, one record per line, tab-separated:
//! `NAME\tSTATE\tRESTARTS\tIMAGE` (STATE one of `created`, `running`, `exited`).
//!
//! The usual invocations (`ps`, `ps aux`, `ps -ef`, `ps -A`) all print the same table: the pod is
//! the whole world the tool can see.

use crate::cli::{self, Io, Syntax};

/// Where the runtime describes the pod's containers.
pub const CONTAINERS: &str = "/run/wasmpod/pod/containers";

const SYNTAX: Syntax = Syntax {
    tool: "ps",
    usage: "Usage: ps [-AefTlw] [aux]\n\nShow the pod's containers (every option shows them all)\n",
    flags: "AefTlwaux",
    valued: "",
};

/// The column headers.
const HEADER: [&str; 4] = ["NAME", "STATE", "RESTARTS", "IMAGE"];

pub fn main(io: &mut Io<'_>, args: &[String]) -> i32 {
    // BSD style `ps aux` has no dash: take such words as flags.
    let args: Vec<String> = args
        .iter()
        .map(|arg| {
            let bsd = !arg.is_empty() && arg.chars().all(|c| "aux".contains(c));
            if bsd { format!("-{arg}") } else { arg.clone() }
        })
        .collect();
    let parsed = match SYNTAX.parse(io, &args) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    if let Some(operand) = parsed.operands.first() {
        return SYNTAX.bad(io, &format!("unexpected argument '{operand}'"));
    }
    let text = match read_pod_file(CONTAINERS) {
        Ok(text) => text,
        Err(None) => return io.fail("ps", "no process information (not running under wasmpod)"),
        Err(Some(e)) => return io.fail("ps", format_args!("{CONTAINERS}: {e}")),
    };
    let (table, malformed) = render(&text);
    let mut code = cli::OK;
    if let Err(e) = io.stdout.write_all(table.as_bytes()) {
        code = io.fail("ps", format_args!("write error: {}", cli::describe(&e)));
    }
    for line in malformed {
        code = io.fail("ps", format_args!("{CONTAINERS}:{line}: malformed record"));
    }
    code
}

/// The contents of one of the runtime's files about the pod; `Err(None)` when it is not there
/// (its directory is not even preopened when the guest does not run under wasmpod's exec).
pub fn read_pod_file(path: &str) -> Result<String, Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound || e.to_string().contains("pre-opened") =>
        {
            Err(None)
        }
        Err(e) => Err(Some(cli::describe(&e))),
    }
}

/// The table of the records in `text`, and the line numbers of malformed ones.
fn render(text: &str) -> (String, Vec<usize>) {
    let mut rows = vec![HEADER.map(str::to_owned)];
    let mut malformed = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        match <[&str; 4]>::try_from(fields) {
            Ok(fields) => rows.push(fields.map(str::to_owned)),
            Err(_) => malformed.push(number + 1),
        }
    }
    (table(&rows), malformed)
}

/// Left-aligned columns, two spaces apart, no trailing blanks (as crictl prints them).
pub fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < N {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::testing::run;

    #[test]
    fn aligned_columns() {
        let text = "web\trunning\t0\tghcr.io/x/web:1.0\nsidecar-logger\texited\t12\tlogger.wasm\n";
        let (table, malformed) = render(text);
        assert_eq!(
            table,
            "NAME            STATE    RESTARTS  IMAGE\n\
             web             running  0         ghcr.io/x/web:1.0\n\
             sidecar-logger  exited   12        logger.wasm\n"
        );
        assert!(malformed.is_empty());
    }

    #[test]
    fn malformed_records_are_reported_by_line() {
        let (table, malformed) = render("a\trunning\t0\timg\n\nbroken\n");
        assert_eq!(table.lines().count(), 2);
        assert_eq!(malformed, [3]);
    }

    #[test]
    fn usual_invocations_parse_and_others_do_not() {
        // Not under wasmpod: the file is missing (the options were accepted).
        for args in [&[][..], &["aux"], &["-ef"], &["-A"], &["ax"]] {
            let (code, _, err) = run(main, args);
            assert_eq!(code, 1, "{args:?}");
            assert_eq!(
                err,
                "ps: no process information (not running under wasmpod)\n"
            );
        }
        assert_eq!(run(main, &["-Z"]).0, 2);
        assert_eq!(run(main, &["1234"]).0, 2);
    }
}
