//! The tiny workspace the `longtail` binary's tests train in: 240 generated 28x28 images of four
//! classes told apart by brightness (`data/`), a three-epoch ResNet-8 config (`tiny.toml`) and a
//! two-group hierarchy (`groups.toml`).

#![allow(dead_code)]

pub const CONFIG: &str = r#"
name = "tiny"
method = "ce"
seed = 1
[data]
recipe = "fashion-mnist"
source = { format = "idx", root = "data", classes = ["zero", "one", "two", "three"] }
long_tail = { profile = { kind = "exp" }, imbalance_factor = 10, selection = { kind = "first" } }
hierarchy = "groups.toml"
[model]
arch = "resnet8"
in_channels = 1
num_classes = 4
head = { kind = "linear" }
[[stages]]
name = "ce"
epochs = 3
batch_size = 16
sampler = { kind = "instance" }
loss = { kind = "ce" }
lr = { base = 0.05, decay = { kind = "constant" } }
optimizer = { weight_decay = 5e-4 }
[loader]
threads = 2
"#;

pub fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    longtail_data::synthetic::write_idx_dataset(&dir.path().join("data"), &[60; 4], 25, 11).unwrap();
    std::fs::write(dir.path().join("tiny.toml"), CONFIG).unwrap();
    std::fs::write(
        dir.path().join("groups.toml"),
        "[[group]]\nname = \"dark\"\nclasses = [\"zero\", \"one\"]\n[[group]]\nname = \"bright\"\nclasses = [\"two\", \"three\"]\n",
    )
    .unwrap();
    dir
}
