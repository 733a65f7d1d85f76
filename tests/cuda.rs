//! The CUDA build (`--features cuda`) on a machine with an NVIDIA GPU: a small random
//! BERT model folder embedded on the GPU (candle's `BertModel`) and on the CPU (our
//! encoder) gives the same vectors. Compiled only with the feature; skipped (passes
//! with a note) when no GPU can be opened.
#![cfg(feature = "cuda")]

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::bert::{BertModel, Config};
use wenda::embed::e5s1::{SpmVocab, build_charsmap, build_tokenizer};
use wenda::embed::{DeviceChoice, Embedder, ModelFiles, ModelProfile};

/// Writes config.json, tokenizer.json and model.safetensors of a random 2-layer model.
fn tiny_model_folder(dir: &std::path::Path) {
    let config = serde_json::json!({
        "vocab_size": 12, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 128, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
        "max_position_embeddings": 64, "type_vocab_size": 2, "initializer_range": 0.5,
        "layer_norm_eps": 1e-12, "pad_token_id": 1, "classifier_dropout": null, "model_type": "bert"
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let parsed: Config = serde_json::from_value(config).unwrap();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    BertModel::load(vb, &parsed).unwrap();
    // f16-exact weights, as a converted model's are.
    for var in varmap.all_vars() {
        let rounded = var
            .to_dtype(DType::F16)
            .and_then(|t| t.to_dtype(DType::F32))
            .unwrap();
        var.set(&rounded).unwrap();
    }
    varmap.save(dir.join("model.safetensors")).unwrap();
    let pieces = [
        "<s>",
        "<pad>",
        "</s>",
        "<unk>",
        "▁",
        "▁query",
        ":",
        "▁passage",
        "中",
        "文",
        "▁a",
        "b",
    ];
    let vocab = SpmVocab {
        pieces: pieces
            .iter()
            .map(|p| (p.to_string(), if p.starts_with('<') { 0.0 } else { -2.0 }))
            .collect(),
        bos: 0,
        eos: 2,
        pad: 1,
        unk: 3,
    };
    let tokenizer = build_tokenizer(&vocab, &build_charsmap(&[]).unwrap()).unwrap();
    tokenizer.save(dir.join("tokenizer.json"), false).unwrap();
}

#[test]
#[ignore = "needs a CUDA GPU: cargo test --release --features cuda --test cuda -- --include-ignored"]
fn gpu_and_cpu_embeddings_agree() {
    DeviceChoice::Cuda.device().expect("a CUDA GPU");
    let dir = tempfile::tempdir().unwrap();
    tiny_model_folder(dir.path());
    let files = ModelFiles::in_dir(dir.path());
    let mut profile = ModelProfile::e5_small();
    profile.max_length = 64;
    let gpu =
        Embedder::load(&files, &profile, DeviceChoice::Cuda.into()).expect("loads on the GPU");
    let cpu = Embedder::load(&files, &profile, DeviceChoice::Cpu.into()).expect("loads on the CPU");
    // Auto picks the GPU when the build has CUDA and one is present.
    let auto = Embedder::load(&files, &profile, DeviceChoice::Auto.into()).unwrap();
    let texts = ["中文", "a b 中", "ab 文 中 a", &"中文 ".repeat(40)];
    let on_gpu = gpu.embed_passages(&texts).unwrap();
    let on_cpu = cpu.embed_passages(&texts).unwrap();
    let on_auto = auto.embed_passages(&texts).unwrap();
    for i in 0..texts.len() {
        for (name, other) in [("cpu", &on_cpu[i]), ("auto", &on_auto[i])] {
            let cosine: f32 = on_gpu[i].iter().zip(other).map(|(a, b)| a * b).sum();
            assert!(cosine > 0.9999, "text {i}: gpu vs {name} cosine {cosine}");
        }
    }
    let q_gpu = gpu.embed_query("中文").unwrap();
    let q_cpu = cpu.embed_query("中文").unwrap();
    let cosine: f32 = q_gpu.iter().zip(&q_cpu).map(|(a, b)| a * b).sum();
    assert!(cosine > 0.9999, "query cosine {cosine}");
    println!("CUDA and CPU embeddings agree on {} texts", texts.len() + 1);
}
