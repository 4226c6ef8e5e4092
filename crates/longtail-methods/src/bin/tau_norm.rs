fn main() {
    longtail::cli::method_main("tau-norm");
}
