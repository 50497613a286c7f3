//! `cat [FILE...]`: copies each FILE (`-` or none: stdin) to stdout.

use crate::cli::{self, Io, Syntax};

const SYNTAX: Syntax = Syntax {
    tool: "cat",
    usage: "Usage: cat [FILE]...\n\nPrint FILEs to stdout (none or '-': stdin)\n",
    flags: "",
    valued: "",
};

pub fn main(io: &mut Io<'_>, args: &[String]) -> i32 {
    let mut files = match SYNTAX.parse(io, args) {
        Ok(parsed) => parsed.operands,
        Err(code) => return code,
    };
    if files.is_empty() {
        files.push("-".to_owned());
    }
    let mut code = cli::OK;
    for file in &files {
        let copied = if file == "-" {
            std::io::copy(io.stdin, io.stdout)
        } else {
            match std::fs::File::open(file) {
                Ok(mut opened) => std::io::copy(&mut opened, io.stdout),
                Err(e) => {
                    code = io.fail(
                        "cat",
                        format_args!("can't open '{file}': {}", cli::describe(&e)),
                    );
                    continue;
                }
            }
        };
        if let Err(e) = copied {
            code = io.fail("cat", format_args!("{file}: {}", cli::describe(&e)));
        }
    }
    if let Err(e) = io.stdout.flush() {
        code = io.fail("cat", format_args!("write error: {}", cli::describe(&e)));
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::testing::{run, run_tool};

    #[test]
    fn files_and_stdin_in_order() {
        let dir = std::env::temp_dir().join(format!("toolbox-cat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let file = dir.join("a");
        std::fs::write(&file, "A\n").expect("write");
        let file = file.to_str().expect("UTF-8").to_owned();
        let args = [file.clone(), "-".into(), file.clone()];
        let (code, out, err) = run_tool(|io| main(io, &args), b"stdin\n");
        assert_eq!((code, out.as_str(), err.as_str()), (0, "A\nstdin\nA\n", ""));
        assert_eq!(run_tool(|io| main(io, &[]), b"x").1, "x");

        let missing = dir.join("missing");
        let missing = missing.to_str().expect("UTF-8");
        let (code, out, err) = run(main, &[missing, &file]);
        assert_eq!((code, out.as_str()), (1, "A\n"));
        assert_eq!(
            err,
            format!("cat: can't open '{missing}': No such file or directory\n")
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn options_are_usage_errors() {
        assert_eq!(run(main, &["-n"]).0, 2);
    }
}
