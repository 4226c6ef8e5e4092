fn main() {
    longtail::cli::method_main("mgkt-drw");
}
