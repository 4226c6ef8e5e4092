fn main() {
    longtail::cli::method_main("h2t-mixup");
}
