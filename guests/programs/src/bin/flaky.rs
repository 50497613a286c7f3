//! `flaky COUNTER_PATH N`: fails until its Nth run, counting runs in a file.
//!
//! Reads the number in `COUNTER_PATH` (0 if the file is missing), adds one, writes it back and
//! prints `run K`. Exits 1 while K < N and 0 from the Nth run on: a container that a restart
//! policy eventually brings to success. Bad usage exits 2.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(Ok(n))) = (args.get(1), args.get(2).map(|n| n.parse::<u32>())) else {
        eprintln!("flaky: usage: flaky COUNTER_PATH N");
        std::process::exit(2);
    };
    let runs = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .unwrap_or(0)
        + 1;
    if let Err(e) = std::fs::write(path, runs.to_string()) {
        eprintln!("flaky {path}: {e}");
        std::process::exit(1);
    }
    println!("run {runs}");
    std::process::exit(if runs < n { 1 } else { 0 });
}
