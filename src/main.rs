fn main() -> std::process::ExitCode {
    tessera::tls::install();
    tessera::cli::main()
}
