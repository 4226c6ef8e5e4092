use clap::Parser;

fn main() {
    longtail::tune_allocator();
    longtail::cli::install_panic_hook();
    longtail::cli::exit_on_error(longtail::cli::run(longtail::cli::Cli::parse()));
}
