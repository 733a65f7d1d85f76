//! Tells the tests whether the shared evaluation data (`../shared`, beside the checkout on
//! development and CI machines) is present: tests that read it are marked ignored, with
//! the reason, where it is not, instead of passing without checking anything.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(shared_data)");
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    let dev = shared.join("eval/dev.jsonl");
    println!("cargo::rerun-if-changed={}", dev.display());
    if dev.is_file() && shared.join("bench").is_dir() && shared.join("models").is_dir() {
        println!("cargo::rustc-cfg=shared_data");
    }
}
