//! The `authgate` binary: parses the command line and hands it to the
//! library ([`authgate::cli`]).

use clap::Parser;

// glibc malloc contends between tokio workers under load (it showed up as
// ~11 % of server CPU in `perf`); mimalloc keeps per-thread heaps. Built
// with `no_thp`: with transparent huge pages its arenas were backed by whole
// 2 MiB pages, and idle RSS was 33 MB instead of 13.5.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    authgate::cli::run(authgate::cli::Cli::parse())
}
