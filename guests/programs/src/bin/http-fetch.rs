//! `http-fetch [-X METHOD] [-d BODY] [--wait-ms MS] URL`: an HTTP client over `wasi:http`.
//!
//! Sends one request to `URL` (`http://AUTHORITY[/PATH][?QUERY]`) through
//! `wasi:http/outgoing-handler` (not raw sockets): method `METHOD` (default `GET`), with
//! `BODY` as the request body (and its `content-length`) if given. Prints `HTTP STATUS` to
//! stderr and the response body to stdout, then exits 0 on a 2xx status and 1 on any other.
//!
//! With `--wait-ms MS` (default 0), a request that fails before any response (e.g.
//! `ErrorCode::ConnectionRefused` while the server is still starting) is retried every
//! 20 ms until `MS` milliseconds have passed. An error prints `http-fetch: <reason>` to
//! stderr and exits 1; bad usage exits 2. wasip2 only: on wasip1 it prints
//! `http-fetch: needs wasip2 (wasi:http)` and exits 2.

fn main() {
    #[cfg(target_env = "p2")]
    client::main();
    #[cfg(not(target_env = "p2"))]
    {
        eprintln!("http-fetch: needs wasip2 (wasi:http)");
        std::process::exit(2);
    }
}

#[cfg(target_env = "p2")]
mod client {
    use std::io::Write as _;
    use std::time::{Duration, Instant};

    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{
        ErrorCode, Fields, IncomingBody, IncomingResponse, Method, OutgoingBody, OutgoingRequest,
        Scheme,
    };
    use wasip2::io::streams::StreamError;

    /// Most bytes `blocking-write-and-flush` accepts in one call.
    const WRITE_CHUNK: usize = 4096;
    /// Bytes asked for per read of the response body.
    const READ_CHUNK: u64 = 64 * 1024;
    /// Pause between two attempts while `--wait-ms` allows retries.
    const RETRY_EVERY: Duration = Duration::from_millis(20);

    /// The command line.
    struct Options {
        method: Method,
        body: Option<String>,
        wait: Duration,
        url: String,
    }

    /// Why an attempt produced no response.
    enum Failure {
        /// The host reported an error before any response: worth retrying.
        Http(ErrorCode),
        /// Anything else: retrying would not help.
        Other(String),
    }

    pub fn main() {
        let options = parse_args(std::env::args().skip(1)).unwrap_or_else(|| usage());
        let Some((authority, path)) = parse_url(&options.url) else {
            fail(&format!("not an http:// URL: {}", options.url))
        };
        let response = match send_with_retries(&options, authority, &path) {
            Ok(response) => response,
            Err(Failure::Http(code)) => fail(&format!("{}: {code:?}", options.url)),
            Err(Failure::Other(why)) => fail(&format!("{}: {why}", options.url)),
        };
        let status = response.status();
        eprintln!("HTTP {status}");
        if let Err(why) = print_body(&response) {
            fail(&format!(
                "{}: reading the response body: {why}",
                options.url
            ));
        }
        std::process::exit(if (200..300).contains(&status) { 0 } else { 1 });
    }

    fn parse_args(mut args: impl Iterator<Item = String>) -> Option<Options> {
        let mut method = Method::Get;
        let mut body = None;
        let mut wait = Duration::ZERO;
        let mut url = None;
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-X" => method = parse_method(&args.next()?)?,
                "-d" => body = Some(args.next()?),
                "--wait-ms" => wait = Duration::from_millis(args.next()?.parse().ok()?),
                _ if arg.starts_with('-') || url.is_some() => return None,
                _ => url = Some(arg),
            }
        }
        Some(Options {
            method,
            body,
            wait,
            url: url?,
        })
    }

    fn parse_method(name: &str) -> Option<Method> {
        Some(match name {
            "" => return None,
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "CONNECT" => Method::Connect,
            "OPTIONS" => Method::Options,
            "TRACE" => Method::Trace,
            "PATCH" => Method::Patch,
            other => Method::Other(other.to_owned()),
        })
    }

    /// `http://AUTHORITY[/PATH][?QUERY]` → `(AUTHORITY, /PATH?QUERY)`.
    fn parse_url(url: &str) -> Option<(&str, String)> {
        let rest = url.strip_prefix("http://")?;
        let at = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(at);
        if authority.is_empty() {
            return None;
        }
        let path = match path.strip_prefix('?') {
            Some(_) => format!("/{path}"),
            None if path.is_empty() => "/".to_owned(),
            None => path.to_owned(),
        };
        Some((authority, path))
    }

    /// Sends the request, again every [`RETRY_EVERY`] while it fails with an `ErrorCode`
    /// and `--wait-ms` has not run out.
    fn send_with_retries(
        options: &Options,
        authority: &str,
        path: &str,
    ) -> Result<IncomingResponse, Failure> {
        let deadline = Instant::now() + options.wait;
        loop {
            match send(options, authority, path) {
                Err(Failure::Http(_)) if Instant::now() < deadline => {
                    std::thread::sleep(RETRY_EVERY);
                }
                outcome => return outcome,
            }
        }
    }

    /// One attempt: sends the request and its body, then waits for the response.
    fn send(options: &Options, authority: &str, path: &str) -> Result<IncomingResponse, Failure> {
        let request = new_request(options, authority, path).map_err(Failure::Other)?;
        let body = match options.body {
            Some(_) => Some(
                request
                    .body()
                    .map_err(|()| Failure::Other("request body already taken".to_owned()))?,
            ),
            None => None,
        };
        let future = outgoing_handler::handle(request, None).map_err(Failure::Http)?;
        // Written after `handle`, so that a body larger than the host's buffer cannot stall.
        let written = match (body, &options.body) {
            (Some(body), Some(bytes)) => write_body(body, bytes.as_bytes()),
            _ => Ok(()),
        };
        future.subscribe().block();
        let response = match future.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(Failure::Http(code)),
            Some(Err(())) => return Err(Failure::Other("response already taken".to_owned())),
            None => return Err(Failure::Other("no response after blocking".to_owned())),
        };
        written
            .map(|()| response)
            .map_err(|why| Failure::Other(format!("writing the request body: {why}")))
    }

    fn new_request(
        options: &Options,
        authority: &str,
        path: &str,
    ) -> Result<OutgoingRequest, String> {
        let headers = match &options.body {
            Some(body) => {
                let length = (
                    "content-length".to_owned(),
                    body.len().to_string().into_bytes(),
                );
                Fields::from_list(&[length]).map_err(|e| format!("headers: {e:?}"))?
            }
            None => Fields::new(),
        };
        let request = OutgoingRequest::new(headers);
        let set = [
            request.set_method(&options.method),
            request.set_scheme(Some(&Scheme::Http)),
            request.set_authority(Some(authority)),
            request.set_path_with_query(Some(path)),
        ];
        if set.iter().any(Result::is_err) {
            return Err(format!("invalid request for http://{authority}{path}"));
        }
        Ok(request)
    }

    /// Writes `bytes` in chunks of at most [`WRITE_CHUNK`], then finishes the body.
    fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), String> {
        let stream = body
            .write()
            .map_err(|()| "body stream already taken".to_owned())?;
        let written = bytes
            .chunks(WRITE_CHUNK)
            .try_for_each(|chunk| stream.blocking_write_and_flush(chunk))
            .map_err(|e| format!("{e:?}"));
        // The stream is a child of the body: it must go first.
        drop(stream);
        written?;
        OutgoingBody::finish(body, None).map_err(|e| format!("{e:?}"))
    }

    /// Copies the response body to stdout as it arrives.
    fn print_body(response: &IncomingResponse) -> Result<(), String> {
        let body = response
            .consume()
            .map_err(|()| "body already consumed".to_owned())?;
        let stream = body
            .stream()
            .map_err(|()| "body stream already taken".to_owned())?;
        let mut stdout = std::io::stdout().lock();
        let copied = loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => {
                    if let Err(e) = stdout.write_all(&chunk) {
                        break Err(format!("stdout: {e}"));
                    }
                }
                Err(StreamError::Closed) => {
                    break stdout.flush().map_err(|e| format!("stdout: {e}"));
                }
                Err(StreamError::LastOperationFailed(e)) => break Err(e.to_debug_string()),
            }
        };
        // The stream is a child of the body: it must go first.
        drop(stream);
        drop(IncomingBody::finish(body));
        copied
    }

    fn fail(message: &str) -> ! {
        eprintln!("http-fetch: {message}");
        std::process::exit(1);
    }

    fn usage() -> ! {
        eprintln!("http-fetch: usage: http-fetch [-X METHOD] [-d BODY] [--wait-ms MS] URL");
        std::process::exit(2);
    }
}
