use clap::Parser;

fn main() {
    longtail::tune_allocator();
    longtail::cli::install_panic_hook();
    let cli = longtail::cli::Cli::parse();
    // Every command runs on a worker of the global rayon pool, so the CPU backend's parallel
    // ops fork in place instead of being handed over from a sleeping main thread.
    longtail::cli::exit_on_error(longtail_train::compute_pool::run(move || longtail::cli::run(cli)));
}
