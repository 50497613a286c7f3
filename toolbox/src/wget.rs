//! `wget [-q] [-O FILE] URL`: fetches an `http://` URL with one HTTP/1.1 GET.
//!
//! The body goes to FILE (`-O-`: stdout; default: the URL's last path segment, or
//! `index.html`, which must not exist yet). Like busybox wget: a non-2xx status is an error
//! (`wget: server returned error: HTTP/1.1 404 Not Found`), progress goes to stderr unless
//! `-q`. Unlike it: no redirects are followed and there is no TLS (`https://` is an error).
//! Host names are resolved through `wasi:sockets/ip-name-lookup`; inside a pod `localhost` and
//! `127.0.0.1` are the pod's own loopback, so `wget -qO- localhost:8080/healthz` asks the
//! pod's server.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs as _};

use crate::cli::{self, Io, Syntax};

const SYNTAX: Syntax = Syntax {
    tool: "wget",
    usage: "Usage: wget [-q] [-O FILE] URL\n\nRetrieve an http:// URL\n\
            \n\t-q\t\tQuiet\
            \n\t-O FILE\t\tSave to FILE ('-' for stdout)\n",
    flags: "q",
    valued: "O",
};

/// The most bytes a response's status line and headers may take.
const MAX_HEAD: usize = 64 << 10;

/// An `http://` URL, taken apart.
#[derive(Debug, PartialEq, Eq)]
struct Url {
    /// The host name or address, without brackets.
    host: String,
    port: u16,
    /// The request target: path and query, starting with `/`.
    target: String,
}

impl Url {
    /// Parses `http://HOST[:PORT][/PATH][?QUERY][#FRAGMENT]`; the scheme may be left out.
    fn parse(text: &str) -> Result<Url, String> {
        let rest = match text.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
                return Err("https is not supported".to_owned());
            }
            Some(_) => return Err(format!("not an http url: {text}")),
            None => text,
        };
        let rest = rest.split('#').next().unwrap_or(rest);
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(end);
        let target = match target {
            "" => "/".to_owned(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_owned(),
        };
        if authority.contains('@') {
            return Err(format!("credentials in URLs are not supported: {text}"));
        }
        let bad_port = || format!("bad port in {text}");
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| format!("bad address in {text}"))?;
            match after {
                "" => (host, 80),
                _ => match after.strip_prefix(':').map(str::parse) {
                    Some(Ok(port)) => (host, port),
                    _ => return Err(bad_port()),
                },
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, port.parse().map_err(|_| bad_port())?),
                None => (authority, 80),
            }
        };
        if host.is_empty() {
            return Err(format!("no host in {text}"));
        }
        Ok(Url {
            host: host.to_owned(),
            port,
            target,
        })
    }

    /// The `Host` header's value: the port only when it is not 80.
    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            80 => host,
            port => format!("{host}:{port}"),
        }
    }

    /// The file a download goes to by default: the last path segment, or `index.html`.
    fn file_name(&self) -> String {
        let path = self.target.split('?').next().unwrap_or("");
        match path.rsplit('/').next() {
            Some(last) if !last.is_empty() && last != "." && last != ".." => last.to_owned(),
            _ => "index.html".to_owned(),
        }
    }
}

/// A response's status line and the headers that matter here.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    /// `HTTP/1.1 404 Not Found`.
    status_line: String,
    status: u16,
    chunked: bool,
    content_length: Option<u64>,
}

/// Reads a response's head from `reader`, skipping interim (1xx) responses.
fn read_head(reader: &mut impl BufRead) -> Result<Head, String> {
    loop {
        let head = read_one_head(reader)?;
        if !(100..200).contains(&head.status) || head.status == 101 {
            return Ok(head);
        }
    }
}

fn read_one_head(reader: &mut impl BufRead) -> Result<Head, String> {
    let mut total = 0;
    let mut line = || -> Result<String, String> {
        let mut bytes = Vec::new();
        let limit = u64::try_from(MAX_HEAD - total).unwrap_or(0);
        reader
            .take(limit)
            .read_until(b'\n', &mut bytes)
            .map_err(|e| format!("error getting response: {}", cli::describe(&e)))?;
        total += bytes.len();
        if !bytes.ends_with(b"\n") {
            return Err(if total >= MAX_HEAD {
                "response headers too long".to_owned()
            } else {
                "connection closed before the end of the response headers".to_owned()
            });
        }
        Ok(String::from_utf8_lossy(&bytes).trim_end().to_owned())
    };
    let status_line = line()?;
    let mut words = status_line.split_whitespace();
    let status = match (words.next(), words.next().map(str::parse::<u16>)) {
        (Some(version), Some(Ok(status))) if version.starts_with("HTTP/") => status,
        _ => return Err(format!("not an HTTP response: {status_line:?}")),
    };
    let mut head = Head {
        status_line,
        status,
        chunked: false,
        content_length: None,
    };
    loop {
        let header = line()?;
        if header.is_empty() {
            return Ok(head);
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("content-length") {
            head.content_length = Some(
                value
                    .parse()
                    .map_err(|_| format!("bad Content-Length: {value:?}"))?,
            );
        }
    }
}

/// Copies the body that follows `head` from `reader` to `out`; returns its length.
fn copy_body(head: &Head, reader: &mut impl BufRead, out: &mut dyn Write) -> Result<u64, String> {
    let read_error = |e: io::Error| format!("error getting response: {}", cli::describe(&e));
    let write_error = |e: io::Error| format!("write error: {}", cli::describe(&e));
    if head.status == 204 || head.status == 304 {
        return Ok(0);
    }
    if head.chunked {
        let mut total = 0;
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).map_err(read_error)?;
            let size = size_line.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size, 16)
                .map_err(|_| format!("bad chunk size {size_line:?}"))?;
            if size == 0 {
                // Trailers, up to the empty line (or the end of the stream).
                loop {
                    let mut trailer = String::new();
                    let n = reader.read_line(&mut trailer).map_err(read_error)?;
                    if n == 0 || trailer.trim_end().is_empty() {
                        return Ok(total);
                    }
                }
            }
            let copied = copy_exactly(&mut reader.by_ref().take(size), out, size)?;
            total += copied;
            let mut crlf = String::new();
            reader.read_line(&mut crlf).map_err(read_error)?;
            if !crlf.trim_end().is_empty() {
                return Err("bad chunk framing".to_owned());
            }
        }
    }
    match head.content_length {
        Some(length) => copy_exactly(&mut reader.take(length), out, length),
        None => io::copy(reader, out).map_err(|e| match e.kind() {
            io::ErrorKind::WriteZero | io::ErrorKind::BrokenPipe => write_error(e),
            _ => read_error(e),
        }),
    }
}

/// Copies `reader` to `out`; an error when it ends before `expected` bytes.
fn copy_exactly(reader: &mut impl Read, out: &mut dyn Write, expected: u64) -> Result<u64, String> {
    let mut buf = [0; 16 << 10];
    let mut copied = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("error getting response: {}", cli::describe(&e))),
        };
        out.write_all(&buf[..n])
            .map_err(|e| format!("write error: {}", cli::describe(&e)))?;
        copied += n as u64;
    }
    if copied < expected {
        return Err("connection closed prematurely".to_owned());
    }
    Ok(copied)
}

/// The addresses `url` names: an IP literal as is, a name through the resolver.
fn resolve(url: &Url) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = url.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, url.port)]);
    }
    let bad = |detail: String| format!("bad address '{}'{detail}", url.host);
    let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| bad(format!(": {}", cli::describe(&e))))?
        .collect();
    if addrs.is_empty() {
        return Err(bad(String::new()));
    }
    Ok(addrs)
}

fn connect(url: &Url) -> Result<TcpStream, String> {
    let mut last = None;
    for addr in resolve(url)? {
        match TcpStream::connect(addr) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some((addr, e)),
        }
    }
    match last {
        Some((addr, e)) => Err(format!(
            "can't connect to remote host ({}): {}",
            addr.ip(),
            cli::describe(&e)
        )),
        None => Err(format!("bad address '{}'", url.host)),
    }
}

/// Where the body goes.
enum Output {
    Stdout,
    /// `-O FILE`: created or truncated.
    File(String),
    /// The URL's file name: created, never overwritten.
    New(String),
}

pub fn main(io: &mut Io<'_>, args: &[String]) -> i32 {
    let parsed = match SYNTAX.parse(io, args) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let url = match &parsed.operands[..] {
        [url] => url,
        [] => return SYNTAX.bad(io, "missing URL"),
        [_, extra, ..] => return SYNTAX.bad(io, &format!("unexpected argument '{extra}'")),
    };
    let quiet = parsed.has('q');
    let url = match Url::parse(url) {
        Ok(url) => url,
        Err(e) => return io.fail("wget", e),
    };
    let output = match parsed.value('O') {
        Some("-") => Output::Stdout,
        Some(file) => Output::File(file.to_owned()),
        None => Output::New(url.file_name()),
    };
    match fetch(io, &url, &output, quiet) {
        Ok(()) => cli::OK,
        Err(e) => io.fail("wget", e),
    }
}

fn fetch(io: &mut Io<'_>, url: &Url, output: &Output, quiet: bool) -> Result<(), String> {
    let host = url.host_header();
    if !quiet {
        let _ = writeln!(
            io.stderr,
            "Connecting to {host}{}",
            if url.port == 80 { ":80" } else { "" }
        );
    }
    let mut stream = connect(url)?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Wget (wasmpod toolbox)\r\n\
         Accept: */*\r\nConnection: close\r\n\r\n",
        url.target
    );
    stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.flush())
        .map_err(|e| format!("error sending request: {}", cli::describe(&e)))?;
    let mut reader = BufReader::with_capacity(16 << 10, stream);
    let head = read_head(&mut reader)?;
    if !(200..300).contains(&head.status) {
        return Err(format!("server returned error: {}", head.status_line));
    }

    let (mut file, name) = match output {
        Output::Stdout => (None, "stdout".to_owned()),
        Output::File(name) => (
            Some(File::create(name).map_err(|e| open_error(name, &e))?),
            format!("'{name}'"),
        ),
        Output::New(name) => (
            Some(File::create_new(name).map_err(|e| open_error(name, &e))?),
            format!("'{name}'"),
        ),
    };
    if !quiet {
        let verb = if file.is_some() {
            "saving to"
        } else {
            "writing to"
        };
        let _ = writeln!(io.stderr, "{verb} {name}");
    }
    match &mut file {
        Some(file) => copy_body(&head, &mut reader, file)?,
        None => copy_body(&head, &mut reader, io.stdout)?,
    };
    match &mut file {
        Some(file) => file.flush(),
        None => io.stdout.flush(),
    }
    .map_err(|e| format!("write error: {}", cli::describe(&e)))?;
    if !quiet {
        let done = if file.is_some() {
            format!("{name} saved")
        } else {
            "written to stdout".to_owned()
        };
        let _ = writeln!(io.stderr, "{done}");
    }
    Ok(())
}

fn open_error(name: &str, e: &io::Error) -> String {
    format!("can't open '{name}': {}", cli::describe(e))
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;
    use crate::cli::testing::run;

    fn url(host: &str, port: u16, target: &str) -> Url {
        Url {
            host: host.to_owned(),
            port,
            target: target.to_owned(),
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            Url::parse("http://example.com"),
            Ok(url("example.com", 80, "/"))
        );
        assert_eq!(
            Url::parse("HTTP://a:8080/x/y?z=1#f"),
            Ok(url("a", 8080, "/x/y?z=1"))
        );
        assert_eq!(
            Url::parse("localhost:81?q"),
            Ok(url("localhost", 81, "/?q"))
        );
        assert_eq!(Url::parse("http://[::1]:8080/"), Ok(url("::1", 8080, "/")));
        assert_eq!(Url::parse("http://[::1]/"), Ok(url("::1", 80, "/")));
        assert_eq!(
            Url::parse("https://a/"),
            Err("https is not supported".to_owned())
        );
        for bad in [
            "ftp://a/",
            "http://",
            "http://a:x/",
            "http://a:99999/",
            "http://u@a/",
            "http://[::1/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_headers_and_file_names() {
        assert_eq!(url("a", 80, "/").host_header(), "a");
        assert_eq!(url("a", 8080, "/").host_header(), "a:8080");
        assert_eq!(url("::1", 8080, "/").host_header(), "[::1]:8080");
        assert_eq!(url("a", 80, "/").file_name(), "index.html");
        assert_eq!(url("a", 80, "/dir/").file_name(), "index.html");
        assert_eq!(url("a", 80, "/dir/f.txt?x=/y").file_name(), "f.txt");
    }

    fn body(response: &[u8]) -> Result<(Head, Vec<u8>), String> {
        let mut reader = response;
        let head = read_head(&mut reader)?;
        let mut out = Vec::new();
        let n = copy_body(&head, &mut reader, &mut out)?;
        assert_eq!(n, out.len() as u64);
        Ok((head, out))
    }

    #[test]
    fn bodies_by_length_chunks_or_end_of_stream() {
        let (head, out) =
            body(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, and more").expect("ok");
        assert_eq!((head.status, out.as_slice()), (200, &b"hello"[..]));
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
                        5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n";
        assert_eq!(body(chunked).expect("ok").1, b"hello, world");
        assert_eq!(
            body(b"HTTP/1.0 200 OK\n\nto the end").expect("ok").1,
            b"to the end"
        );
        let interim =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
        let (head, out) = body(interim).expect("ok");
        assert_eq!(
            (head.status_line.as_str(), out.as_slice()),
            ("HTTP/1.1 201 Created", &b"ok"[..])
        );
    }

    #[test]
    fn broken_responses() {
        assert!(body(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
        assert!(body(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err());
        assert!(body(b"HTTP/1.1 200 OK\r\nContent-Le").is_err());
        assert!(body(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        let huge = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "x".repeat(MAX_HEAD));
        assert_eq!(
            body(huge.as_bytes()).err().as_deref(),
            Some("response headers too long")
        );
    }

    /// A server on the host's loopback answering each connection with the next response.
    fn serve(responses: &[&'static str]) -> (u16, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let responses = responses.to_vec();
        let server = std::thread::spawn(move || {
            let mut requests = Vec::new();
            for response in responses {
                let (mut stream, _) = listener.accept().expect("accept");
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut request = String::new();
                while !request.ends_with("\r\n\r\n") {
                    if reader.read_line(&mut request).expect("read") == 0 {
                        break;
                    }
                }
                requests.push(request);
                stream.write_all(response.as_bytes()).expect("write");
            }
            requests
        });
        (port, server)
    }

    #[test]
    fn fetches_to_stdout_and_files() {
        let (port, server) = serve(&[
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi\n",
            "HTTP/1.1 200 OK\r\n\r\nsaved",
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        ]);
        let base = format!("http://127.0.0.1:{port}");
        let (code, out, err) = run(main, &["-qO-", &format!("{base}/a?b")]);
        assert_eq!((code, out.as_str(), err.as_str()), (0, "hi\n", ""));

        let file = std::env::temp_dir().join(format!("toolbox-wget-{}", std::process::id()));
        let file = file.to_str().expect("UTF-8");
        let (code, out, err) = run(main, &["-O", file, &base]);
        assert_eq!((code, out.as_str()), (0, ""));
        assert_eq!(
            err,
            format!("Connecting to 127.0.0.1:{port}\nsaving to '{file}'\n'{file}' saved\n")
        );
        assert_eq!(std::fs::read_to_string(file).expect("saved"), "saved");
        std::fs::remove_file(file).expect("cleanup");

        let (code, out, err) = run(main, &["-q", "-O-", &format!("{base}/missing")]);
        assert_eq!((code, out.as_str()), (1, ""));
        assert_eq!(err, "wget: server returned error: HTTP/1.1 404 Not Found\n");

        let requests = server.join().expect("server");
        assert_eq!(
            requests[0],
            format!(
                "GET /a?b HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: Wget (wasmpod toolbox)\r\n\
                 Accept: */*\r\nConnection: close\r\n\r\n"
            )
        );
    }

    #[test]
    fn usage_and_refusals() {
        assert_eq!(run(main, &[]).0, 2);
        assert_eq!(run(main, &["-x", "http://a/"]).0, 2);
        assert_eq!(run(main, &["http://a/", "http://b/"]).0, 2);
        assert_eq!(
            run(main, &["https://example.com/"]),
            (
                1,
                String::new(),
                "wget: https is not supported\n".to_owned()
            )
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let (code, _, err) = run(main, &["-q", &format!("http://127.0.0.1:{port}/")]);
        assert_eq!(code, 1);
        assert_eq!(
            err,
            "wget: can't connect to remote host (127.0.0.1): Connection refused\n"
        );
    }
}
