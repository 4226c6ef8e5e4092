fn main() {
    longtail::cli::method_main("label-smoothing");
}
