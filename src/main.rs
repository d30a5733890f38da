use std::process::ExitCode;

// glibc's malloc showed up as ≈ 15 % of a login's server CPU (malloc, free, consolidation);
// mimalloc's thread-local free lists suit a server that allocates and frees on many threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    wardstone::cli::main()
}
