fn main() {
    longtail::cli::method_main("weighted-ce");
}
