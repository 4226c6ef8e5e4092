fn main() {
    longtail::cli::method_main("fbl");
}
