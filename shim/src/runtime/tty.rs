//! A terminal for `kubectl exec -t`: what a pty's line discipline does between the user's
//! keystrokes and a process, for a Wasm process that has no pty.
//!
//! With `-t`, kubectl puts the user's terminal in raw mode and sends keystrokes as typed (a
//! carriage return for Enter, `^D`, `^C`, DEL for backspace); on Linux the container's pty
//! turns them into lines. Here the same happens in the shim (termios defaults, `ICANON`,
//! `ECHO`, `ICRNL`, `ONLCR`):
//! - input is buffered a line at a time and handed to the process on Enter, as `\n`;
//!   DEL and `^H` erase a character, `^U` the line; `^D` on an empty line is the end of the
//!   input, elsewhere it hands over the line so far; `^C` ends the process (as `SIGINT`
//!   would a shell's child);
//! - what is typed is echoed to the output;
//! - the process's `\n` goes out as `\r\n`, and it sees a terminal (`isatty`).

use std::collections::VecDeque;
use std::io::{self, Write as _};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

const INTR: u8 = 0x03;
const EOF: u8 = 0x04;
const BACKSPACE: u8 = 0x08;
const KILL: u8 = 0x15;
const DEL: u8 = 0x7f;

/// The line discipline's state: the line being typed, and what it decided.
#[derive(Debug, Default)]
pub struct Discipline {
    line: Vec<u8>,
}

/// What one chunk of keystrokes came to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Typed {
    /// Bytes for the process's stdin (whole lines, or a line `^D` handed over).
    pub input: Vec<u8>,
    /// Bytes to echo to the terminal.
    pub echo: Vec<u8>,
    /// `^D` on an empty line: the end of the input.
    pub end: bool,
    /// `^C`: the process is interrupted.
    pub interrupt: bool,
}

impl Discipline {
    /// Feeds `keys`, as the user typed them. Processing stops at the end of input or an
    /// interrupt; what follows them is dropped.
    pub fn feed(&mut self, keys: &[u8]) -> Typed {
        let mut typed = Typed::default();
        for &key in keys {
            match key {
                b'\r' | b'\n' => {
                    self.line.push(b'\n');
                    typed.input.append(&mut self.line);
                    typed.echo.extend_from_slice(b"\r\n");
                }
                EOF if self.line.is_empty() => {
                    typed.end = true;
                    break;
                }
                EOF => typed.input.append(&mut self.line),
                INTR => {
                    typed.echo.extend_from_slice(b"^C\r\n");
                    typed.interrupt = true;
                    break;
                }
                DEL | BACKSPACE => {
                    if self.line.pop().is_some() {
                        typed.echo.extend_from_slice(b"\x08 \x08");
                    }
                }
                KILL => {
                    for _ in self.line.drain(..) {
                        typed.echo.extend_from_slice(b"\x08 \x08");
                    }
                }
                _ => {
                    self.line.push(key);
                    typed.echo.push(key);
                }
            }
        }
        typed
    }
}

/// Translates a process's output for the terminal: `\n` → `\r\n` (`ONLCR`).
pub fn onlcr(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16);
    for &b in bytes {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// The terminal's output: the exec's stdout FIFO, written synchronously as containers' output
/// is, with `\n` sent as `\r\n`. Stdout and stderr of the process both go here. Without a
/// FIFO (the client takes no output) it is discarded.
#[derive(Debug, Clone)]
pub struct TerminalOutput {
    fifo: Option<Arc<std::fs::File>>,
}

impl TerminalOutput {
    /// The terminal writing to `fifo`.
    pub fn new(fifo: Option<std::fs::File>) -> Self {
        TerminalOutput {
            fifo: fifo.map(Arc::new),
        }
    }

    fn write_raw(&self, bytes: &[u8]) -> io::Result<()> {
        match &self.fifo {
            Some(fifo) => (&**fifo).write_all(bytes),
            None => Ok(()),
        }
    }
}

impl IsTerminal for TerminalOutput {
    fn is_terminal(&self) -> bool {
        true
    }
}

impl StdoutStream for TerminalOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for TerminalOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.write_raw(&onlcr(buf)).map(|()| buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The terminal's input: keystrokes from the exec's stdin FIFO through the [`Discipline`],
/// echoed to `echo`; `^C` cancels `interrupt`.
pub struct TerminalInput<R> {
    keys: R,
    discipline: Discipline,
    ready: VecDeque<u8>,
    end: bool,
    echo: TerminalOutput,
    interrupt: CancellationToken,
}

impl<R> TerminalInput<R> {
    /// The terminal reading keystrokes from `keys`.
    pub fn new(keys: R, echo: TerminalOutput, interrupt: CancellationToken) -> Self {
        TerminalInput {
            keys,
            discipline: Discipline::default(),
            ready: VecDeque::new(),
            end: false,
            echo,
            interrupt,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for TerminalInput<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.ready.is_empty() {
                let n = buf.remaining().min(this.ready.len());
                let (front, back) = this.ready.as_slices();
                let from_front = n.min(front.len());
                buf.put_slice(&front[..from_front]);
                buf.put_slice(&back[..n - from_front]);
                this.ready.drain(..n);
                return Poll::Ready(Ok(()));
            }
            if this.end {
                return Poll::Ready(Ok(()));
            }
            let mut keys = [0u8; 1024];
            let mut read = ReadBuf::new(&mut keys);
            match Pin::new(&mut this.keys).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    // The client went away: the end of the input.
                    this.end = true;
                }
                Poll::Ready(Ok(())) => {
                    let typed = this.discipline.feed(read.filled());
                    if !typed.echo.is_empty() {
                        // The terminal going away is the output's failure, not the input's.
                        let _ = this.echo.write_raw(&typed.echo);
                    }
                    this.ready.extend(typed.input);
                    if typed.interrupt {
                        this.interrupt.cancel();
                        this.end = true;
                    }
                    this.end |= typed.end;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_handed_over_on_enter_and_echoed() {
        let mut tty = Discipline::default();
        let typed = tty.feed(b"ls /da");
        assert_eq!(
            (typed.input.as_slice(), typed.echo.as_slice()),
            (&b""[..], &b"ls /da"[..])
        );
        let typed = tty.feed(b"ta\r");
        assert_eq!(typed.input, b"ls /data\n");
        assert_eq!(typed.echo, b"ta\r\n");
        assert!(!typed.end && !typed.interrupt);
    }

    #[test]
    fn erase_kill_and_end_of_input() {
        let mut tty = Discipline::default();
        let typed = tty.feed(b"cxx\x7f\x08at\r");
        assert_eq!(typed.input, b"cat\n");
        assert_eq!(typed.echo, b"cxx\x08 \x08\x08 \x08at\r\n");
        let typed = tty.feed(b"oops\x15ok\x04");
        assert_eq!(
            typed.input, b"ok",
            "^D mid-line hands the line over, no newline"
        );
        assert!(!typed.end);
        let typed = tty.feed(b"\x04ignored");
        assert!(typed.end, "^D on an empty line ends the input");
        assert!(typed.input.is_empty());
        // Erasing an empty line echoes nothing.
        assert_eq!(Discipline::default().feed(b"\x7f").echo, b"");
    }

    #[test]
    fn ctrl_c_interrupts() {
        let typed = Discipline::default().feed(b"sleep\x03more");
        assert!(typed.interrupt);
        assert!(typed.input.is_empty());
        assert_eq!(typed.echo, b"sleep^C\r\n");
    }

    #[test]
    fn output_newlines_become_crlf() {
        assert_eq!(onlcr(b"a\nb\n"), b"a\r\nb\r\n");
        assert_eq!(onlcr(b"no newline"), b"no newline");
    }

    #[tokio::test]
    async fn input_through_a_pipe_reads_as_lines_and_echoes() {
        use tokio::io::AsyncReadExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let echo_path = dir.path().join("echo");
        let echo = TerminalOutput::new(Some(std::fs::File::create(&echo_path).expect("echo file")));
        let interrupt = CancellationToken::new();
        let keys: &[u8] = b"hello\rworld\r\x04after";
        let mut input = TerminalInput::new(keys, echo, interrupt.clone());
        let mut read = String::new();
        input.read_to_string(&mut read).await.expect("read");
        assert_eq!(read, "hello\nworld\n");
        assert_eq!(
            std::fs::read(&echo_path).expect("echo"),
            b"hello\r\nworld\r\n"
        );
        assert!(!interrupt.is_cancelled());
    }
}
