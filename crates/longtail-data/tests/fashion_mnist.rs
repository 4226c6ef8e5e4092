//! The real Fashion-MNIST from Debian's `dataset-fashion-mnist` (CI installs it). Without the
//! package the test is skipped with a message, unless LONGTAIL_REQUIRE_DATA=1 makes it required.

use longtail_data::readers::idx;
use longtail_data::{DataConfig, shot_groups};

#[test]
fn fashion_mnist_lt_if100_from_the_debian_package() {
    if idx::locate_fashion_mnist(None).is_err() {
        assert!(std::env::var("LONGTAIL_REQUIRE_DATA").is_err(), "Fashion-MNIST is required but not installed");
        eprintln!("skipped: apt-get install dataset-fashion-mnist to run this test");
        return;
    }
    let splits = DataConfig::fashion_mnist_lt(100.0).load().unwrap();
    assert_eq!(splits.train.class_counts(), vec![6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60]);
    assert_eq!(splits.train.len(), 14_886);
    assert_eq!(splits.test.class_counts(), vec![1000; 10]);
    let img = splits.train.image(0).unwrap();
    assert_eq!((img.height, img.width, img.channels), (28, 28, 1));
    let g = shot_groups(&splits.train.class_counts(), 100, 20);
    assert_eq!((g.many.len(), g.medium.len(), g.few.len()), (8, 2, 0));
}
