//! `echo [-neE] [ARG...]`: prints the arguments, separated by spaces, and a newline.
//!
//! As in every echo, options are only the leading arguments made of `n`, `e` and `E`
//! (`-n`: no newline; `-e`: interpret backslash escapes; `-E`: do not); anything else is text,
//! `--help` included.

use crate::cli::{self, Io};

pub fn main(io: &mut Io<'_>, args: &[String]) -> i32 {
    let mut newline = true;
    let mut escapes = false;
    let mut words = args;
    while let Some((first, rest)) = words.split_first() {
        let Some(letters) = first.strip_prefix('-') else {
            break;
        };
        if letters.is_empty() || !letters.chars().all(|c| matches!(c, 'n' | 'e' | 'E')) {
            break;
        }
        for letter in letters.chars() {
            match letter {
                'n' => newline = false,
                'e' => escapes = true,
                _ => escapes = false,
            }
        }
        words = rest;
    }

    let mut out = Vec::new();
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        if escapes {
            if unescape(word.as_bytes(), &mut out) == Flow::Stop {
                newline = false;
                break;
            }
        } else {
            out.extend_from_slice(word.as_bytes());
        }
    }
    if newline {
        out.push(b'\n');
    }
    match io.stdout.write_all(&out) {
        Ok(()) => cli::OK,
        Err(e) => io.fail("echo", format_args!("write error: {}", cli::describe(&e))),
    }
}

#[derive(PartialEq, Eq)]
enum Flow {
    Go,
    /// `\c`: no more output.
    Stop,
}

/// Appends `word` to `out` with `-e`'s escapes interpreted.
fn unescape(word: &[u8], out: &mut Vec<u8>) -> Flow {
    let mut i = 0;
    while i < word.len() {
        let byte = word[i];
        i += 1;
        if byte != b'\\' || i == word.len() {
            out.push(byte);
            continue;
        }
        let escape = word[i];
        i += 1;
        let simple = match escape {
            b'\\' => Some(b'\\'),
            b'a' => Some(7),
            b'b' => Some(8),
            b'e' => Some(0x1b),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'c' => return Flow::Stop,
            _ => None,
        };
        if let Some(simple) = simple {
            out.push(simple);
            continue;
        }
        let (radix, max) = match escape {
            b'0' => (8, 3),
            b'x' => (16, 2),
            _ => {
                out.extend_from_slice(&[b'\\', escape]);
                continue;
            }
        };
        let digits = word[i..]
            .iter()
            .take(max)
            .take_while(|d| char::from(**d).is_digit(radix))
            .count();
        if radix == 16 && digits == 0 {
            out.extend_from_slice(b"\\x");
            continue;
        }
        let value = word[i..i + digits].iter().fold(0u32, |v, d| {
            v * radix + char::from(*d).to_digit(radix).unwrap_or(0)
        });
        out.push(u8::try_from(value & 0xff).unwrap_or(0));
        i += digits;
    }
    Flow::Go
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::testing::run;

    fn echo(args: &[&str]) -> String {
        let (code, out, err) = run(main, args);
        assert_eq!((code, err.as_str()), (0, ""));
        out
    }

    #[test]
    fn words_newline_and_options() {
        assert_eq!(echo(&[]), "\n");
        assert_eq!(echo(&["a", "b  c"]), "a b  c\n");
        assert_eq!(echo(&["-n", "a"]), "a");
        assert_eq!(echo(&["-x", "--help", "-"]), "-x --help -\n");
        assert_eq!(echo(&["-n", "-n", "a", "-n"]), "a -n");
    }

    #[test]
    fn escapes_only_with_e() {
        assert_eq!(echo(&["a\\tb"]), "a\\tb\n");
        assert_eq!(echo(&["-e", "a\\tb\\\\\\x41\\0101\\q"]), "a\tb\\AA\\q\n");
        assert_eq!(echo(&["-e", "a\\cb", "c"]), "a");
        assert_eq!(echo(&["-eE", "a\\n"]), "a\\n\n");
    }
}
