//! `env [ARG...]`: prints what the guest sees of its process environment.
//!
//! Output, one item per line:
//! 1. every argument, including `argv[0]`, as `arg[i]=VALUE`;
//! 2. every environment variable as `KEY=value`, sorted by key;
//! 3. `cwd=` followed by `std::env::current_dir()`, or `cwd=?` if that fails.
//!
//! Non-UTF-8 arguments and variables are printed lossily.

fn main() {
    for (i, arg) in std::env::args_os().enumerate() {
        println!("arg[{i}]={}", arg.to_string_lossy());
    }
    let mut vars: Vec<_> = std::env::vars_os().collect();
    vars.sort();
    for (key, value) in vars {
        println!("{}={}", key.to_string_lossy(), value.to_string_lossy());
    }
    match std::env::current_dir() {
        Ok(dir) => println!("cwd={}", dir.display()),
        Err(_) => println!("cwd=?"),
    }
}
