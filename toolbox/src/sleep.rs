//! `sleep DURATION...`: waits for the sum of the durations: seconds, decimals allowed
//! (`0.5`), with an optional unit suffix `s`, `m`, `h` or `d`.

use std::time::Duration;

use crate::cli::{self, Io, Syntax};

const SYNTAX: Syntax = Syntax {
    tool: "sleep",
    usage: "Usage: sleep [N]...\n\nPause for a time equal to the total of the args given, where each arg can\n\
            have an optional suffix of (s)econds, (m)inutes, (h)ours, or (d)ays; N may be a decimal\n",
    flags: "",
    valued: "",
};

pub fn main(io: &mut Io<'_>, args: &[String]) -> i32 {
    let operands = match SYNTAX.parse(io, args) {
        Ok(parsed) => parsed.operands,
        Err(code) => return code,
    };
    if operands.is_empty() {
        return SYNTAX.bad(io, "missing operand");
    }
    let mut total = Duration::ZERO;
    for operand in &operands {
        match parse(operand) {
            Some(duration) => total = total.saturating_add(duration),
            None => return io.fail("sleep", format_args!("invalid number '{operand}'")),
        }
    }
    std::thread::sleep(total);
    cli::OK
}

/// `1.5m` → 90 s. Plain decimal numbers only: no sign, exponent, `inf` or `nan`.
fn parse(text: &str) -> Option<Duration> {
    let (number, unit) = match text.char_indices().last()? {
        (at, 's') => (&text[..at], 1.0),
        (at, 'm') => (&text[..at], 60.0),
        (at, 'h') => (&text[..at], 3600.0),
        (at, 'd') => (&text[..at], 86400.0),
        _ => (text, 1.0),
    };
    let digits = number.chars().filter(char::is_ascii_digit).count();
    let dots = number.chars().filter(|c| *c == '.').count();
    if digits == 0 || dots > 1 || digits + dots != number.len() {
        return None;
    }
    let seconds: f64 = number.parse().ok()?;
    Duration::try_from_secs_f64(seconds * unit).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::testing::run;

    #[test]
    fn decimals_and_units() {
        assert_eq!(parse("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse(".25s"), Some(Duration::from_millis(250)));
        assert_eq!(parse("1.5m"), Some(Duration::from_secs(90)));
        assert_eq!(parse("1h"), Some(Duration::from_secs(3600)));
        for bad in ["", "s", "-1", "1e3", "inf", "nan", "1.2.3", "1x", "1 "] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sleeps_the_sum() {
        let start = std::time::Instant::now();
        assert_eq!(
            run(main, &["0.05", "0.05s"]),
            (0, String::new(), String::new())
        );
        assert!(start.elapsed() >= Duration::from_millis(100));
    }

    #[test]
    fn errors() {
        assert_eq!(run(main, &[]).0, 2);
        let (code, _, err) = run(main, &["soon"]);
        assert_eq!((code, err.as_str()), (1, "sleep: invalid number 'soon'\n"));
    }
}
