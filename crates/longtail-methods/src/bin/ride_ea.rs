fn main() {
    longtail::cli::method_main(env!("CARGO_BIN_NAME"));
}
