fn main() {
    longtail::cli::method_main("cb-ce");
}
