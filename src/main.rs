use std::process::ExitCode;

fn main() -> ExitCode {
    wardstone::cli::main()
}
