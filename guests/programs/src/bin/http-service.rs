//! `http-service`: a `wasi:http/proxy` service with test routes; serve it with a wasi:http host.
//!
//! The component exports `wasi:http/incoming-handler` (wasip2 only). Routes, decided by the
//! path without its query (query values may be `%XX`-encoded):
//!
//! - `GET /`: `200`, `content-type: text/plain`, body `hello from wasi:http\n`.
//! - `/echo` (any method): `200` with the request body as the response body and the header
//!   `x-request-bytes: N`.
//! - `GET /slow?ms=N`: sleeps `N` ms (`wasi:clocks/monotonic-clock`), then `200`
//!   `slept N ms\n`.
//! - `GET /trap`: traps the instance (wasm `unreachable`); no response.
//! - `GET /spin`: computes forever without yielding; no response.
//! - `GET /alloc?mb=N`: allocates and touches `N` MiB, held until the response is sent,
//!   then `200` `allocated N MiB\n`.
//! - `GET /fetch?url=http://AUTHORITY/PATH`: a `GET` through `wasi:http/outgoing-handler`;
//!   `200` `upstream STATUS: BODY`, or `502` with the `Debug` of the error.
//! - `GET /env?name=X`: `200` with the value of the environment variable `X` and a newline,
//!   or `404`.
//! - `/log-stderr` (any method): prints `to stderr` to stderr, then `200` `logged\n`.
//! - anything else: `404` `not found\n`; a bad or missing parameter: `400`.
//!
//! Every request first prints `METHOD PATH` (the path with its query) to stdout. Run as a
//! command (`main`), it prints `http-service: this is a wasi:http service; run it with a
//! wasi:http host` to stderr and exits 2; on wasip1 it can do nothing else.

fn main() {
    #[cfg(target_env = "p2")]
    eprintln!("http-service: this is a wasi:http service; run it with a wasi:http host");
    #[cfg(not(target_env = "p2"))]
    eprintln!("http-service: this is a wasi:http service; it needs wasip2 and a wasi:http host");
    std::process::exit(2);
}

#[cfg(target_env = "p2")]
mod service {
    use wasip2::exports::http::incoming_handler::Guest;
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{
        ErrorCode, Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingRequest,
        OutgoingResponse, ResponseOutparam, Scheme,
    };
    use wasip2::io::streams::{InputStream, StreamError};

    /// Most bytes `blocking-write-and-flush` accepts in one call.
    const WRITE_CHUNK: usize = 4096;
    /// Bytes asked for per read of an incoming body.
    const READ_CHUNK: u64 = 64 * 1024;

    struct Service;

    wasip2::http::proxy::export!(Service);

    impl Guest for Service {
        fn handle(request: IncomingRequest, out: ResponseOutparam) {
            let method = request.method();
            let target = request.path_with_query().unwrap_or_else(|| "/".to_owned());
            println!("{} {target}", method_name(&method));
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            let reply = route(&method, path, query, &request);
            send(out, &reply);
        }
    }

    /// A response, fully buffered.
    struct Reply {
        status: u16,
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
        /// Memory to keep allocated until the response has been sent (`/alloc`).
        held: Vec<u8>,
    }

    impl Reply {
        /// A `text/plain` response.
        fn text(status: u16, body: impl Into<String>) -> Self {
            Self {
                status,
                headers: vec![("content-type".to_owned(), b"text/plain".to_vec())],
                body: body.into().into_bytes(),
                held: Vec::new(),
            }
        }

        fn bad_request(why: &str) -> Self {
            Self::text(400, format!("bad request: {why}\n"))
        }

        fn not_found() -> Self {
            Self::text(404, "not found\n")
        }
    }

    fn route(method: &Method, path: &str, query: &str, request: &IncomingRequest) -> Reply {
        let get = matches!(method, Method::Get);
        match path {
            "/" if get => Reply::text(200, "hello from wasi:http\n"),
            "/echo" => echo(request),
            "/slow" if get => match param(query, "ms").and_then(|ms| ms.parse().ok()) {
                Some(ms) => slow(ms),
                None => Reply::bad_request("expected ?ms=N"),
            },
            "/trap" if get => core::arch::wasm32::unreachable(),
            "/spin" if get => spin(),
            "/alloc" if get => match param(query, "mb").and_then(|mb| mb.parse().ok()) {
                Some(mb) => alloc(mb),
                None => Reply::bad_request("expected ?mb=N"),
            },
            "/fetch" if get => match param(query, "url") {
                Some(url) => fetch(&url),
                None => Reply::bad_request("expected ?url=URL"),
            },
            "/env" if get => match param(query, "name") {
                Some(name) => env(&name),
                None => Reply::bad_request("expected ?name=X"),
            },
            "/log-stderr" => {
                eprintln!("to stderr");
                Reply::text(200, "logged\n")
            }
            _ => Reply::not_found(),
        }
    }

    /// `/echo`: the request body back, with `x-request-bytes`.
    fn echo(request: &IncomingRequest) -> Reply {
        let body = match request.consume() {
            Ok(body) => body,
            Err(()) => return Reply::text(500, "request body already consumed\n"),
        };
        match read_body(body) {
            Ok(bytes) => Reply {
                status: 200,
                headers: vec![(
                    "x-request-bytes".to_owned(),
                    bytes.len().to_string().into_bytes(),
                )],
                body: bytes,
                held: Vec::new(),
            },
            Err(e) => Reply::text(500, format!("reading the request body: {e}\n")),
        }
    }

    /// `/slow?ms=N`: blocks on a monotonic-clock pollable for `N` ms.
    fn slow(ms: u64) -> Reply {
        let nanos = ms.saturating_mul(1_000_000);
        wasip2::clocks::monotonic_clock::subscribe_duration(nanos).block();
        Reply::text(200, format!("slept {ms} ms\n"))
    }

    /// `/alloc?mb=N`: `N` MiB, every byte written, held until the reply is sent.
    /// Computes forever: the host must preempt it, and stop it.
    fn spin() -> ! {
        let mut x: u64 = 1;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }

    fn alloc(mb: usize) -> Reply {
        let Some(bytes) = mb.checked_mul(1 << 20) else {
            return Reply::bad_request("too many MiB");
        };
        let mut reply = Reply::text(200, format!("allocated {mb} MiB\n"));
        reply.held = vec![1u8; bytes];
        reply
    }

    /// `/env?name=X`: the variable's value, or 404.
    fn env(name: &str) -> Reply {
        match std::env::var(name) {
            Ok(value) => Reply::text(200, format!("{value}\n")),
            Err(e) => Reply::text(404, format!("{name}: {e}\n")),
        }
    }

    /// `/fetch?url=URL`: an outgoing `GET`, answered `upstream STATUS: BODY` or 502.
    fn fetch(url: &str) -> Reply {
        let Some((authority, path)) = parse_url(url) else {
            return Reply::bad_request("only http://AUTHORITY[/PATH] URLs are supported");
        };
        match get(authority, &path) {
            Ok((status, body)) => {
                let mut reply = Reply::text(200, format!("upstream {status}: "));
                reply.body.extend_from_slice(&body);
                reply
            }
            Err(e) => Reply::text(502, format!("{e}\n")),
        }
    }

    /// Sends `GET http://AUTHORITY PATH` and returns the status and the whole body.
    fn get(authority: &str, path: &str) -> Result<(u16, Vec<u8>), String> {
        let request = OutgoingRequest::new(Fields::new());
        let set = [
            request.set_method(&Method::Get),
            request.set_scheme(Some(&Scheme::Http)),
            request.set_authority(Some(authority)),
            request.set_path_with_query(Some(path)),
        ];
        if set.iter().any(Result::is_err) {
            return Err(format!("invalid request for http://{authority}{path}"));
        }
        let future = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
        future.subscribe().block();
        let response = match future.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(e))) => return Err(format!("{e:?}")),
            Some(Err(())) => return Err("response already taken".to_owned()),
            None => return Err("response not ready after blocking".to_owned()),
        };
        let status = response.status();
        let body = response
            .consume()
            .map_err(|()| "response body already consumed".to_owned())?;
        let body = read_body(body).map_err(|e| format!("reading the upstream body: {e}"))?;
        Ok((status, body))
    }

    /// Reads an incoming body to its end.
    fn read_body(body: IncomingBody) -> Result<Vec<u8>, String> {
        let stream = body
            .stream()
            .map_err(|()| "body stream already taken".to_owned())?;
        let bytes = read_stream(&stream);
        // The stream is a child of the body: it must go first.
        drop(stream);
        drop(IncomingBody::finish(body));
        bytes
    }

    fn read_stream(stream: &InputStream) -> Result<Vec<u8>, String> {
        let mut bytes = Vec::new();
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => return Ok(bytes),
                Err(StreamError::LastOperationFailed(e)) => return Err(e.to_debug_string()),
            }
        }
    }

    /// Sets the response, then streams its body (after `set`, so a large body cannot stall).
    fn send(out: ResponseOutparam, reply: &Reply) {
        let mut headers = reply.headers.clone();
        headers.push((
            "content-length".to_owned(),
            reply.body.len().to_string().into_bytes(),
        ));
        let response = match Fields::from_list(&headers) {
            Ok(fields) => OutgoingResponse::new(fields),
            Err(e) => return fail(out, format!("headers: {e:?}")),
        };
        if response.set_status_code(reply.status).is_err() {
            return fail(out, format!("invalid status {}", reply.status));
        }
        let Ok(body) = response.body() else {
            return fail(out, "response body already taken".to_owned());
        };
        ResponseOutparam::set(out, Ok(response));
        if let Err(e) = write_body(body, &reply.body) {
            eprintln!("http-service: writing the response body: {e}");
        }
        std::hint::black_box(&reply.held);
    }

    /// Answers with an error instead of a response.
    fn fail(out: ResponseOutparam, why: String) {
        eprintln!("http-service: {why}");
        ResponseOutparam::set(out, Err(ErrorCode::InternalError(Some(why))));
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

    /// The `%XX`-decoded value of the first `name=value` pair of `query` named `name`.
    fn param(query: &str, name: &str) -> Option<String> {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| percent_decode(value))
    }

    /// Decodes `%XX` escapes; a malformed escape is kept as it is.
    fn percent_decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            match (bytes[i], hex) {
                (b'%', Some(byte)) => {
                    out.push(byte);
                    i += 3;
                }
                (byte, _) => {
                    out.push(byte);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn method_name(method: &Method) -> &str {
        match method {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Connect => "CONNECT",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
            Method::Patch => "PATCH",
            Method::Other(other) => other,
        }
    }
}
