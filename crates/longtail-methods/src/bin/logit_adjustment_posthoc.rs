fn main() {
    longtail::cli::method_main("logit-adjustment-posthoc");
}
