//! Reads a Hugging Face snapshot: how it pools, how it tokenises, its prompts, tasks and
//! vector lengths. What the architecture is, `arch` reads from the `config.json` text kept here.
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::paths::inside;
use crate::pooling::Pooling;

#[derive(Debug)]
pub struct ModelDir {
    pub path: PathBuf,
    /// `config.json`'s text, valid JSON.
    pub config_text: String,
    /// The tokenizer file, `tokenizer.json`.
    pub tokenizer_file: PathBuf,
    pub pooling: Pooling,
    pub prompts: Prompts,
    /// `max_seq_length` from `sentence_bert_config.json`, when the snapshot has one.
    pub max_seq_length: Option<usize>,
    pub tasks: Tasks,
    /// `matryoshka_dimensions` of `config.json`: the only lengths the vector may be cut to.
    pub matryoshka_dimensions: Option<Vec<usize>>,
    /// The sentence-transformers `Dense` modules after pooling, in `modules.json`'s order.
    pub dense: Vec<DenseModule>,
}

/// A sentence-transformers `Dense` module: its folder and what its `config.json` says.
#[derive(Debug, Clone, Deserialize)]
pub struct DenseModule {
    #[serde(skip)]
    pub folder: PathBuf,
    pub in_features: usize,
    pub out_features: usize,
    #[serde(default = "yes")]
    pub bias: bool,
    /// A PyTorch module path (`torch.nn.modules.linear.Identity`); sentence-transformers'
    /// default is `Tanh`.
    #[serde(default = "tanh")]
    pub activation_function: String,
}

fn yes() -> bool {
    true
}
fn tanh() -> String {
    "torch.nn.modules.activation.Tanh".into()
}

/// One entry of `modules.json`.
#[derive(Deserialize)]
struct Module {
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

/// The sentence-transformers modules this addon computes (after the transformer, in order).
const KNOWN_MODULES: [&str; 4] = ["Transformer", "Pooling", "Dense", "Normalize"];

/// The tasks `config.json` names (jina-embeddings-v3): `lora_adaptations` (a task's index there
/// is what the model's `task_id` input takes) and `task_instructions` (text put before inputs).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Tasks {
    #[serde(
        default,
        rename = "lora_adaptations",
        deserialize_with = "null_as_empty"
    )]
    pub adapters: Vec<String>,
    #[serde(
        default,
        rename = "task_instructions",
        deserialize_with = "null_as_empty"
    )]
    pub instructions: std::collections::BTreeMap<String, String>,
}

impl Tasks {
    /// Every task name: the adapters in their order, then tasks with an instruction only.
    pub fn names(&self) -> Vec<String> {
        let mut names = self.adapters.clone();
        names.extend(
            self.instructions
                .keys()
                .filter(|k| !self.adapters.contains(k))
                .cloned(),
        );
        names
    }

    /// The index of `name` among the adapters.
    pub fn adapter(&self, name: &str) -> Option<usize> {
        self.adapters.iter().position(|a| a == name)
    }
}

impl ModelDir {
    /// The vector length asked for: any from 1 to the model's, or one of the snapshot's
    /// `matryoshka_dimensions` when it lists them.
    pub fn dimensions(&self, asked: Option<usize>, model_dim: usize) -> Result<usize> {
        let Some(n) = asked else {
            return Ok(model_dim);
        };
        if let Some(allowed) = &self.matryoshka_dimensions {
            if !allowed.contains(&n) || n > model_dim {
                return Err(Error::Input(format!(
                    "dimensions {n} is not one this model was trained to be cut to (its matryoshka_dimensions: {allowed:?})"
                )));
            }
        }
        if n == 0 || n > model_dim {
            return Err(Error::Input(format!(
                "dimensions must be from 1 to the model's {model_dim}, got {n}"
            )));
        }
        Ok(n)
    }

    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_dir() {
            return Err(Error::model_file(
                path,
                "is not a directory (expected a Hugging Face model snapshot)",
            ));
        }
        let config_path = path.join("config.json");
        let text = read_text(&config_path)?;
        let extras: ConfigExtras = serde_json::from_str(&text).map_err(|e| {
            let what = match e.classify() {
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                    format!("is not valid JSON ({e})")
                }
                _ => format!("has malformed task fields ({e})"),
            };
            Error::model_file(&config_path, what)
        })?;
        let tokenizer_file = path.join("tokenizer.json");
        if !tokenizer_file.is_file() {
            return Err(Error::model_file(
                &tokenizer_file,
                "is missing (expected the model's Hugging Face tokenizer file)",
            ));
        }
        let modules = read_modules(path)?;
        Ok(ModelDir {
            dense: read_dense(path, &modules)?,
            pooling: read_pooling(path, &modules)?,
            prompts: read_prompts(path)?,
            max_seq_length: read_max_seq_length(path)?,
            tasks: extras.tasks,
            matryoshka_dimensions: extras.matryoshka_dimensions,
            path: path.to_path_buf(),
            config_text: text,
            tokenizer_file,
        })
    }

    /// The ONNX file to run: `onnx_file` (relative to the snapshot, or absolute) when given,
    /// else `onnx/model.onnx`, else `model.onnx`.
    pub fn onnx_file(&self, onnx_file: Option<&str>) -> Result<PathBuf> {
        if let Some(name) = onnx_file {
            let candidates = [self.path.join(name), self.path.join("onnx").join(name)];
            return candidates
                .iter()
                .find(|p| p.is_file())
                .cloned()
                .ok_or_else(|| {
                    Error::model_file(&candidates[0], "was named by onnxFile but does not exist")
                });
        }
        let candidates = [
            self.path.join("onnx").join("model.onnx"),
            self.path.join("model.onnx"),
        ];
        candidates.iter().find(|p| p.is_file()).cloned().ok_or_else(|| {
            Error::model_file(
                &self.path,
                "has no ONNX weights (expected onnx/model.onnx or model.onnx, or name one with onnxFile)",
            )
        })
    }
}

fn null_as_empty<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// What `config.json` says besides the architecture: tasks and vector lengths.
#[derive(Deserialize)]
struct ConfigExtras {
    #[serde(flatten)]
    tasks: Tasks,
    matryoshka_dimensions: Option<Vec<usize>>,
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::model_file(path, format!("cannot be read ({e})")))
}

/// Reads an optional JSON file: `Ok(None)` when absent, an error naming the file when malformed.
fn read_optional<T: for<'de> Deserialize<'de>>(path: &Path, expected: &str) -> Result<Option<T>> {
    if !path.exists() {
        return Ok(None);
    }
    serde_json::from_str(&read_text(path)?)
        .map(Some)
        .map_err(|e| Error::model_file(path, format!("is malformed: {e} (expected {expected})")))
}

/// The pooling module's folder comes from `modules.json` when present (sentence-transformers'
/// own layout), else `1_Pooling`. Without any pooling config we mean-pool, as sentence-transformers
/// does for a plain transformer.
fn read_pooling(dir: &Path, modules: &[Module]) -> Result<Pooling> {
    #[derive(Deserialize)]
    struct PoolingConfig {
        #[serde(default)]
        pooling_mode_cls_token: bool,
        #[serde(default)]
        pooling_mode_mean_tokens: bool,
        #[serde(default)]
        pooling_mode_lasttoken: bool,
    }
    let folder = modules
        .iter()
        .find(|m| m.kind.ends_with("Pooling"))
        .map_or("1_Pooling", |m| &m.path);
    let path = dir.join(folder).join("config.json");
    let config: Option<PoolingConfig> =
        read_optional(&path, "a sentence-transformers pooling config")?;
    match config {
        None => Ok(Pooling::Mean),
        Some(c) if c.pooling_mode_cls_token => Ok(Pooling::Cls),
        Some(c) if c.pooling_mode_mean_tokens => Ok(Pooling::Mean),
        Some(c) if c.pooling_mode_lasttoken => Ok(Pooling::LastToken),
        Some(_) => Err(Error::unsupported(
            &path,
            "asks for a pooling mode this addon does not support (supported: pooling_mode_cls_token, pooling_mode_mean_tokens, pooling_mode_lasttoken)",
        )),
    }
}

/// `modules.json` (empty when absent), each module's folder inside the snapshot and of a type
/// this addon computes: any other module would change the vectors.
fn read_modules(dir: &Path) -> Result<Vec<Module>> {
    let path = dir.join("modules.json");
    let modules: Vec<Module> =
        read_optional(&path, "a list of {path, type} modules")?.unwrap_or_default();
    for m in &modules {
        let name = m.kind.rsplit('.').next().unwrap_or(&m.kind);
        if !inside(&m.path) {
            return Err(Error::model_file(
                &path,
                format!("puts the {} module at {:?}, outside the snapshot; it must be a folder of the snapshot", name.to_lowercase(), m.path),
            ));
        }
        if !KNOWN_MODULES.contains(&name) {
            return Err(Error::unsupported(
                &path,
                format!("has a sentence-transformers module of type {:?}, which this addon does not compute (it computes {})", m.kind, KNOWN_MODULES.join(", ")),
            ));
        }
    }
    Ok(modules)
}

fn read_dense(dir: &Path, modules: &[Module]) -> Result<Vec<DenseModule>> {
    let dense = modules.iter().filter(|m| m.kind.ends_with("Dense"));
    dense
        .map(|m| {
            let folder = dir.join(&m.path);
            let config: Option<DenseModule> = read_optional(
                &folder.join("config.json"),
                "a sentence-transformers Dense config",
            )?;
            let config = config.ok_or_else(|| {
                Error::model_file(
                    &folder.join("config.json"),
                    "is missing (modules.json lists a Dense module there)",
                )
            })?;
            Ok(DenseModule { folder, ..config })
        })
        .collect()
}

/// The text put before queries and before documents, exactly as the snapshot writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompts {
    pub query: String,
    pub document: String,
    /// Every prompt of the snapshot by name, `query` and `document` among them
    /// (EmbeddingGemma's `Code Retrieval`, jina-code-embeddings' `nl2code_query`).
    pub named: std::collections::BTreeMap<String, String>,
}

/// `prompts.query`, and `prompts.document` (or `passage`) of `config_sentence_transformers.json`.
fn read_prompts(dir: &Path) -> Result<Prompts> {
    #[derive(Deserialize)]
    struct StConfig {
        #[serde(default)]
        prompts: std::collections::HashMap<String, String>,
    }
    let config: Option<StConfig> = read_optional(
        &dir.join("config_sentence_transformers.json"),
        "a sentence-transformers config with an optional \"prompts\" object",
    )?;
    let named: std::collections::BTreeMap<String, String> = config
        .map(|c| c.prompts)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let get = |name: &str| named.get(name).cloned();
    Ok(Prompts {
        query: get("query").unwrap_or_default(),
        document: get("document")
            .or_else(|| get("passage"))
            .unwrap_or_default(),
        named,
    })
}

fn read_max_seq_length(dir: &Path) -> Result<Option<usize>> {
    #[derive(Deserialize)]
    struct SbertConfig {
        max_seq_length: Option<usize>,
    }
    let config: Option<SbertConfig> = read_optional(
        &dir.join("sentence_bert_config.json"),
        "an object with \"max_seq_length\"",
    )?;
    Ok(config.and_then(|c| c.max_seq_length))
}
