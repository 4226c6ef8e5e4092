fn main() {
    longtail::cli::method_main("ffn-kps");
}
