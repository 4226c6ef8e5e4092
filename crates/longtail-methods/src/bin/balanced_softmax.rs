fn main() {
    longtail::cli::method_main("balanced-softmax");
}
