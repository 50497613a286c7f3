//! `ls [-1aAdhl] [PATH...]`: lists directories (sorted by name) and files.
//!
//! `-l` shows type and permissions, size, modification time (UTC) and name (with `-> TARGET`
//! for a symlink). WASI has no owners, link counts or permission bits: the permissions shown are
//! the usual ones for the type (`rwxr-xr-x` for a directory, `rw-r--r--` for a file); std's
//! `Permissions::readonly` is no help, on WASI it says read-only for every file. Output is one
//! name per line (`-1`), as `ls` prints to a pipe.

use std::fs::{self, FileType, Metadata};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cli::{self, Io, Syntax};

const SYNTAX: Syntax = Syntax {
    tool: "ls",
    usage: "Usage: ls [-1aAdhl] [FILE]...\n\nList directory contents\n\
            \n\t-1\tOne column output\
            \n\t-a\tInclude names starting with .\
            \n\t-A\tLike -a, but exclude . and ..\
            \n\t-d\tList directory names, not contents\
            \n\t-h\tHuman readable sizes (1K 243M 2G)\
            \n\t-l\tLong format\n",
    flags: "1aAdhl",
    valued: "",
};

#[derive(Debug, Clone, Copy)]
struct Show {
    long: bool,
    human: bool,
    /// Names starting with `.`.
    hidden: bool,
    /// `.` and `..`.
    dots: bool,
    /// Directories as themselves, not their contents.
    directory: bool,
}

/// One name to list.
struct Entry {
    name: String,
    /// `lstat` of it; `None` when it cannot be had.
    meta: Option<Metadata>,
    /// Where a symlink points.
    target: Option<String>,
}

pub fn main(io: &mut Io<'_>, args: &[String]) -> i32 {
    let parsed = match SYNTAX.parse(io, args) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let show = Show {
        long: parsed.has('l'),
        human: parsed.has('h'),
        hidden: parsed.has('a') || parsed.has('A'),
        dots: parsed.has('a') && !parsed.has('A'),
        directory: parsed.has('d'),
    };
    let mut operands = parsed.operands;
    if operands.is_empty() {
        operands.push(".".to_owned());
    }
    operands.sort();

    let mut code = cli::OK;
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for operand in &operands {
        // The operands themselves are followed when they are links, except with -l (or -d),
        // where a link is shown as a link (as GNU ls does).
        let meta = if show.long || show.directory {
            fs::symlink_metadata(operand)
        } else {
            fs::metadata(operand).or_else(|_| fs::symlink_metadata(operand))
        };
        match meta {
            Err(e) => {
                code = io.fail(
                    "ls",
                    format_args!("cannot access '{operand}': {}", cli::describe(&e)),
                );
            }
            Ok(meta) if meta.is_dir() && !show.directory => dirs.push(operand),
            Ok(meta) => files.push(entry(operand.clone(), Path::new(operand), Some(meta))),
        }
    }

    let now = SystemTime::now();
    let mut out = String::new();
    out.push_str(&format_entries(&files, show, now));
    let headers = operands.len() > 1;
    for (i, dir) in dirs.iter().enumerate() {
        if headers {
            if i > 0 || !files.is_empty() {
                out.push('\n');
            }
            out.push_str(&format!("{dir}:\n"));
        }
        match read_dir(Path::new(dir), show) {
            Ok(entries) => out.push_str(&format_entries(&entries, show, now)),
            Err(e) => {
                // Print what came before the error first, as ls would have.
                let _ = io.stdout.write_all(std::mem::take(&mut out).as_bytes());
                code = io.fail(
                    "ls",
                    format_args!("can't open '{dir}': {}", cli::describe(&e)),
                );
            }
        }
    }
    if let Err(e) = io.stdout.write_all(out.as_bytes()) {
        code = io.fail("ls", format_args!("write error: {}", cli::describe(&e)));
    }
    code
}

fn entry(name: String, path: &Path, meta: Option<Metadata>) -> Entry {
    let target = meta
        .as_ref()
        .filter(|meta| meta.file_type().is_symlink())
        .and_then(|_| fs::read_link(path).ok())
        .map(|target| target.to_string_lossy().into_owned());
    Entry { name, meta, target }
}

/// The entries of `dir` that `show` asks for, sorted by name.
fn read_dir(dir: &Path, show: Show) -> std::io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    if show.dots {
        for dot in [".", ".."] {
            // A preopened directory's `..` is out of the guest's reach: shown without details.
            let meta = show
                .long
                .then(|| fs::symlink_metadata(dir.join(dot)).ok())
                .flatten();
            entries.push(Entry {
                name: dot.to_owned(),
                meta,
                target: None,
            });
        }
    }
    for dirent in fs::read_dir(dir)? {
        let dirent = dirent?;
        let name = dirent.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && !show.hidden {
            continue;
        }
        let meta = if show.long {
            dirent.metadata().ok()
        } else {
            None
        };
        entries.push(entry(name, &dirent.path(), meta));
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// The listing of `entries`: names, or `-l`'s aligned columns.
fn format_entries(entries: &[Entry], show: Show, now: SystemTime) -> String {
    if !show.long {
        return entries.iter().map(|e| format!("{}\n", e.name)).collect();
    }
    let rows: Vec<[String; 3]> = entries
        .iter()
        .map(|entry| match &entry.meta {
            Some(meta) => [
                mode(meta.file_type()).to_owned(),
                if show.human {
                    human(meta.len())
                } else {
                    meta.len().to_string()
                },
                meta.modified()
                    .map_or_else(|_| "?".to_owned(), |t| timestamp(t, now)),
            ],
            None => ["??????????".to_owned(), "?".into(), "?".into()],
        })
        .collect();
    let width = |column: usize| rows.iter().map(|r| r[column].len()).max().unwrap_or(0);
    let (size_width, time_width) = (width(1), width(2));
    let mut out = String::new();
    for (entry, [mode, size, time]) in entries.iter().zip(rows) {
        out.push_str(&format!(
            "{mode} {size:>size_width$} {time:<time_width$} {}",
            entry.name
        ));
        if let Some(target) = &entry.target {
            out.push_str(" -> ");
            out.push_str(target);
        }
        out.push('\n');
    }
    out
}

/// `drwxr-xr-x`: the type letter and the conventional permissions of the type.
fn mode(file_type: FileType) -> &'static str {
    if file_type.is_dir() {
        "drwxr-xr-x"
    } else if file_type.is_symlink() {
        "lrwxrwxrwx"
    } else if file_type.is_file() {
        "-rw-r--r--"
    } else {
        // Devices, sockets, pipes: WASI's stable API tells them apart from nothing else.
        "?rw-rw-rw-"
    }
}

/// `-h` sizes as coreutils prints them: `512`, `1.5K`, `12M` (rounded up).
fn human(bytes: u64) -> String {
    if bytes < 1024 {
        return bytes.to_string();
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    const UNITS: [char; 6] = ['K', 'M', 'G', 'T', 'P', 'E'];
    while value >= 1024.0 && unit < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let suffix = UNITS[unit - 1];
    if value < 10.0 {
        let tenths = (value * 10.0).ceil() / 10.0;
        if tenths < 10.0 {
            return format!("{tenths:.1}{suffix}");
        }
    }
    format!("{}{suffix}", value.ceil())
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Mar  5 14:03` for a time within six months of `now`, else `Mar  5  2023` (UTC: WASI has
/// no time zone).
fn timestamp(time: SystemTime, now: SystemTime) -> String {
    const HALF_YEAR: i64 = 365 * 86400 / 2;
    let seconds = |t: SystemTime| match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    };
    let (secs, now) = (seconds(time), seconds(now));
    let (year, month, day) = civil_from_days(secs.div_euclid(86400));
    let month = MONTHS[usize::try_from(month - 1).unwrap_or(0)];
    if (now - secs).abs() < HALF_YEAR {
        let of_day = secs.rem_euclid(86400);
        format!(
            "{month} {day:>2} {:02}:{:02}",
            of_day / 3600,
            of_day % 3600 / 60
        )
    } else {
        format!("{month} {day:>2} {year:>5}")
    }
}

/// Days since 1970-01-01 → (year, month 1-12, day 1-31): Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cli::testing::run;

    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let path =
                std::env::temp_dir().join(format!("toolbox-ls-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).expect("mkdir");
            TempDir(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().expect("UTF-8")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn names_sorted_hidden_only_with_a() {
        let dir = TempDir::new("names");
        for name in ["b", "a", ".hidden", "C"] {
            fs::write(dir.0.join(name), name).expect("write");
        }
        fs::create_dir(dir.0.join("sub")).expect("mkdir");
        assert_eq!(
            run(main, &[dir.path()]),
            (0, "C\na\nb\nsub\n".into(), String::new())
        );
        assert_eq!(
            run(main, &["-1a", dir.path()]).1,
            ".\n..\n.hidden\nC\na\nb\nsub\n"
        );
        assert_eq!(run(main, &["-A", dir.path()]).1, ".hidden\nC\na\nb\nsub\n");
        assert_eq!(
            run(main, &["-d", dir.path()]).1,
            format!("{}\n", dir.path())
        );
    }

    #[test]
    fn long_format() {
        let dir = TempDir::new("long");
        fs::write(dir.0.join("file"), "12345").expect("write");
        fs::create_dir(dir.0.join("sub")).expect("mkdir");
        #[cfg(unix)]
        std::os::unix::fs::symlink("file", dir.0.join("link")).expect("symlink");
        let (code, out, err) = run(main, &["-l", dir.path()]);
        assert_eq!((code, err.as_str()), (0, ""));
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("-rw-r--r-- "), "{out}");
        assert!(
            lines[0].contains(" 5 ") && lines[0].ends_with(" file"),
            "{out}"
        );
        #[cfg(unix)]
        assert!(
            lines[1].starts_with("lrwxrwxrwx ") && lines[1].ends_with(" link -> file"),
            "{out}"
        );
        assert!(
            lines.last().expect("sub").starts_with("drwxr-xr-x "),
            "{out}"
        );
    }

    #[test]
    fn files_then_directories_with_headers() {
        let dir = TempDir::new("many");
        fs::write(dir.0.join("f"), "").expect("write");
        fs::create_dir(dir.0.join("d")).expect("mkdir");
        fs::write(dir.0.join("d/inner"), "").expect("write");
        let f = format!("{}/f", dir.path());
        let d = format!("{}/d", dir.path());
        let (code, out, _) = run(main, &[&d, &f]);
        assert_eq!(code, 0);
        assert_eq!(out, format!("{f}\n\n{d}:\ninner\n"));
    }

    #[test]
    fn missing_paths_are_errors_and_the_rest_is_listed() {
        let dir = TempDir::new("missing");
        fs::write(dir.0.join("f"), "").expect("write");
        let missing = format!("{}/nope", dir.path());
        let (code, out, err) = run(main, &[&missing, dir.path()]);
        assert_eq!(code, 1);
        assert_eq!(
            err,
            format!("ls: cannot access '{missing}': No such file or directory\n")
        );
        assert_eq!(out, format!("{}:\nf\n", dir.path()));
        assert_eq!(run(main, &["-z"]).0, 2);
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0");
        assert_eq!(human(1023), "1023");
        assert_eq!(human(1024), "1.0K");
        assert_eq!(human(1536), "1.5K");
        assert_eq!(human(10 * 1024 - 1), "10K");
        assert_eq!(human(123 << 20), "123M");
        assert_eq!(human(5 << 30), "5.0G");
    }

    #[test]
    fn timestamps() {
        let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
        // 2024-02-29 13:05:00 UTC
        let leap = at(1_709_211_900);
        assert_eq!(timestamp(leap, leap), "Feb 29 13:05");
        assert_eq!(
            timestamp(leap, at(1_709_211_900 + 400 * 86400)),
            "Feb 29  2024"
        );
        assert_eq!(timestamp(at(0), at(0)), "Jan  1 00:00");
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
