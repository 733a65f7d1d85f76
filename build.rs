//! Tells the tests whether the shared evaluation data (`../shared`, beside the checkout on
//! development and CI machines) is present, and whether poppler's `pdftotext` is
//! installed, and which int8 kernels this processor can run: tests that need them are
//! marked ignored, with the reason, where they are not, instead of passing without checking
//! anything.
//!
//! Cargo treats a `rerun-if-changed` path that does not exist as changed, which would
//! rebuild the crate on every `cargo build` of a clone without `../shared`. So this
//! script watches only files that exist: the evaluation set when `../shared` is there,
//! else itself (add `../shared` later and `touch build.rs` to look again).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(has_pdftotext)");
    let pdftotext = std::process::Command::new("pdftotext")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success() || !o.stderr.is_empty());
    if pdftotext {
        println!("cargo::rustc-cfg=has_pdftotext");
    }
    println!("cargo::rustc-check-cfg=cfg(shared_data)");
    // Read when the script runs, not baked in when it is compiled.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let shared = std::path::Path::new(&manifest_dir).join("../shared");
    let dev = shared.join("eval/dev.jsonl");
    if dev.is_file() {
        println!("cargo::rerun-if-changed={}", dev.display());
    } else {
        println!("cargo::rerun-if-changed=build.rs");
    }
    if dev.is_file() && shared.join("bench").is_dir() && shared.join("models").is_dir() {
        println!("cargo::rustc-cfg=shared_data");
    }
    // The int8 encoder kernels (src/embed/int8.rs) this processor has; the tests run where
    // the build runs.
    #[cfg(target_arch = "x86_64")]
    for (cfg, features) in [
        ("cpu_avx2", &["avx2", "fma"][..]),
        ("cpu_avxvnni", &["avx2", "fma", "avxvnni"][..]),
        ("cpu_avx512vnni", &["avx512f", "avx512bw", "avx512vnni"][..]),
    ] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        let has = features.iter().all(|f| match *f {
            "avx2" => std::is_x86_feature_detected!("avx2"),
            "fma" => std::is_x86_feature_detected!("fma"),
            "avxvnni" => std::is_x86_feature_detected!("avxvnni"),
            "avx512f" => std::is_x86_feature_detected!("avx512f"),
            "avx512bw" => std::is_x86_feature_detected!("avx512bw"),
            "avx512vnni" => std::is_x86_feature_detected!("avx512vnni"),
            _ => false,
        });
        if has {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    for cfg in ["cpu_avx2", "cpu_avxvnni", "cpu_avx512vnni"] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
    }
}
