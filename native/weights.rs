//! Tensors from `model.safetensors` (or its shards), read one at a time from the file and
//! converted to f32: the whole file is never held in memory next to the graph's copy.
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, Metadata, TensorInfo};
use serde::Deserialize;

use crate::error::{Error, Result};

/// The weights a backend runs: the encoder described from `model.safetensors` (shared with the
/// MLX thread, and dropped once every backend has taken its own copy), or an ONNX file.
pub enum WeightsSource {
    Encoder {
        encoder: std::sync::Arc<crate::arch::Encoder>,
        source: PathBuf,
    },
    Onnx(PathBuf),
}

impl WeightsSource {
    /// An encoder whose tensors a graph took (`emit` releases each once it is in the graph).
    pub fn spent(&self) -> bool {
        matches!(self, WeightsSource::Encoder { encoder, .. } if encoder.layers.is_empty())
    }

    pub fn path(&self) -> &Path {
        match self {
            WeightsSource::Encoder { source, .. } => source,
            WeightsSource::Onnx(file) => file,
        }
    }
}

/// A tensor in PyTorch's layout (row-major, `shape` outermost first).
#[derive(Debug, Clone, Default)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    /// Rows `start..end` of a 2-D tensor.
    pub fn rows(&self, start: usize, end: usize) -> Tensor {
        let width = self.shape[1];
        Tensor {
            shape: vec![end - start, width],
            data: self.data[start * width..end * width].to_vec(),
        }
    }

    /// The row-major transpose of a 2-D tensor.
    pub fn transposed(&self) -> Tensor {
        let mut data = vec![0.0; self.data.len()];
        self.transpose_into(1.0, &mut data);
        Tensor {
            shape: vec![self.shape[1], self.shape[0]],
            data,
        }
    }

    /// Writes this 2-D tensor transposed and times `scale` into `out`, a tile at a time (a
    /// plain column walk misses the cache on every read of a large matrix).
    pub fn transpose_into(&self, scale: f32, out: &mut [f32]) {
        const TILE: usize = 32;
        let (rows, cols) = (self.shape[0], self.shape[1]);
        for r0 in (0..rows).step_by(TILE) {
            for c0 in (0..cols).step_by(TILE) {
                for r in r0..(r0 + TILE).min(rows) {
                    let row = &self.data[r * cols..(r + 1) * cols];
                    for c in c0..(c0 + TILE).min(cols) {
                        out[c * rows + r] = row[c] * scale;
                    }
                }
            }
        }
    }
}

struct Shard {
    path: PathBuf,
    data_start: u64,
}

pub struct Safetensors {
    shards: Vec<Shard>,
    tensors: HashMap<String, (usize, TensorInfo)>,
    /// Some checkpoints prefix every key (`bert.`, `model.`); found once, applied to every lookup.
    prefix: String,
    /// What `info().weights` names: the single file, or the shard index.
    pub source: PathBuf,
    pub bytes: u64,
}

const SINGLE: &str = "model.safetensors";
const INDEX: &str = "model.safetensors.index.json";

impl Safetensors {
    /// Whether the snapshot has safetensors weights (one file or a shard index).
    pub fn present(dir: &Path) -> bool {
        dir.join(SINGLE).is_file() || dir.join(INDEX).is_file()
    }

    /// The snapshot's safetensors weights, or `None` when it has none. Every key's prefix is
    /// what stands before `anchor`, a key each checkpoint of the architecture has.
    pub fn open(dir: &Path, anchor: &str) -> Result<Option<Self>> {
        let Some((source, files)) = Safetensors::files(dir)? else {
            return Ok(None);
        };
        let mut weights = Safetensors {
            shards: Vec::new(),
            tensors: HashMap::new(),
            prefix: String::new(),
            source,
            bytes: 0,
        };
        for path in files {
            weights.add_shard(path)?;
        }
        weights.prefix = weights.find_prefix(anchor)?;
        Ok(Some(weights))
    }

    /// What names the weights (the file, or the shard index) and the files that hold them.
    pub fn files(dir: &Path) -> Result<Option<(PathBuf, Vec<PathBuf>)>> {
        Ok(if dir.join(SINGLE).is_file() {
            Some((dir.join(SINGLE), vec![dir.join(SINGLE)]))
        } else if dir.join(INDEX).is_file() {
            Some((dir.join(INDEX), shard_files(&dir.join(INDEX))?))
        } else {
            None
        })
    }

    fn add_shard(&mut self, path: PathBuf) -> Result<()> {
        let bad = |what: String| Error::model_file(&path, what);
        let mut file = File::open(&path).map_err(|e| bad(format!("cannot be read ({e})")))?;
        let mut len = [0u8; 8];
        file.read_exact(&mut len)
            .map_err(|e| bad(format!("is not a safetensors file ({e})")))?;
        let header_len = u64::from_le_bytes(len);
        if header_len > 100 << 20 {
            return Err(bad(
                "is not a safetensors file (header length out of range)".into(),
            ));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header)
            .map_err(|e| bad(format!("has a truncated header ({e})")))?;
        let metadata: Metadata = serde_json::from_slice(&header)
            .map_err(|e| bad(format!("has a malformed header ({e})")))?;
        let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let data_len = file_len.saturating_sub(8 + header_len);
        let tensors = metadata.tensors();
        check_layout(&tensors, data_len).map_err(bad)?;
        let shard = self.shards.len();
        for (name, info) in tensors {
            self.tensors.insert(name, (shard, info.clone()));
        }
        self.bytes += file_len;
        self.shards.push(Shard {
            path,
            data_start: 8 + header_len,
        });
        Ok(())
    }

    fn find_prefix(&self, anchor: &str) -> Result<String> {
        let mut prefixes: Vec<&str> = self
            .tensors
            .keys()
            .filter_map(|k| k.strip_suffix(anchor))
            .filter(|p| p.is_empty() || p.ends_with('.'))
            .collect();
        // the shortest: `model.embed_tokens.weight` rather than a nested copy's key
        prefixes.sort_by_key(|p| p.len());
        prefixes.first().map(|p| p.to_string()).ok_or_else(|| {
            Error::model_file(
                &self.source,
                format!("has no tensor named {anchor} (is it a checkpoint of the model_type config.json names?)"),
            )
        })
    }

    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(&format!("{}{name}", self.prefix))
    }

    /// The tensor `name` (without the checkpoint's key prefix), as f32.
    pub fn get(&self, name: &str) -> Result<Tensor> {
        let key = format!("{}{name}", self.prefix);
        let (shard, info) = self
            .tensors
            .get(&key)
            .ok_or_else(|| Error::model_file(&self.source, format!("has no tensor named {key}")))?;
        let shard = &self.shards[*shard];
        let bad = |what: String| Error::model_file(&shard.path, what);
        let width = match info.dtype {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::BF16 => 2,
            other => {
                return Err(bad(format!(
                    "stores {key} as {other:?}; supported: F32, F16, BF16"
                )))
            }
        };
        let (start, end) = info.data_offsets;
        let count = elements(&info.shape).unwrap_or(usize::MAX);
        if end < start || Some(end - start) != count.checked_mul(width) {
            return Err(bad(format!(
                "has tensor {key} of shape {:?} in {} bytes, which does not fit",
                info.shape,
                end.saturating_sub(start)
            )));
        }
        let mut file = File::open(&shard.path).map_err(|e| bad(format!("cannot be read ({e})")))?;
        file.seek(SeekFrom::Start(shard.data_start + start as u64))
            .map_err(|e| bad(format!("cannot be read ({e})")))?;
        // Read and converted a chunk at a time: never the file's bytes and the floats together.
        let mut data = vec![0f32; count];
        let mut chunk = vec![0u8; (READ_CHUNK / width * width).min(count * width)];
        for out in data.chunks_mut(chunk.len().max(width) / width) {
            let bytes = &mut chunk[..out.len() * width];
            file.read_exact(bytes)
                .map_err(|e| bad(format!("is truncated at tensor {key} ({e})")))?;
            convert(info.dtype, bytes, out);
        }
        Ok(Tensor {
            shape: info.shape.clone(),
            data,
        })
    }

    /// `get`, checking the shape against what the config implies.
    pub fn get_shaped(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let tensor = self.get(name)?;
        if tensor.shape != shape {
            return Err(Error::model_file(
                &self.source,
                format!(
                    "has {}{name} of shape {:?}, but config.json implies {shape:?}",
                    self.prefix, tensor.shape
                ),
            ));
        }
        Ok(tensor)
    }
}

fn shard_files(index: &Path) -> Result<Vec<PathBuf>> {
    #[derive(Deserialize)]
    struct Index {
        weight_map: HashMap<String, String>,
    }
    let text = std::fs::read_to_string(index)
        .map_err(|e| Error::model_file(index, format!("cannot be read ({e})")))?;
    let parsed: Index = serde_json::from_str(&text).map_err(|e| {
        Error::model_file(
            index,
            format!("is malformed: {e} (expected a \"weight_map\" of tensor name to file)"),
        )
    })?;
    let dir = index.parent().unwrap_or(Path::new("."));
    if let Some(outside) = parsed
        .weight_map
        .values()
        .find(|f| !crate::model_dir::inside(f))
    {
        return Err(Error::model_file(
            index,
            format!("names a shard outside the snapshot ({outside:?}); shards must be files of the snapshot"),
        ));
    }
    let mut files: Vec<PathBuf> = parsed.weight_map.values().map(|f| dir.join(f)).collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// The number of elements of `shape`, when it fits a `usize`.
fn elements(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// Every tensor lies inside the file's `data_len` bytes of data, and no two overlap: a header
/// that says otherwise is refused before anything is allocated from it.
fn check_layout(
    tensors: &HashMap<String, &safetensors::tensor::TensorInfo>,
    data_len: u64,
) -> std::result::Result<(), String> {
    let mut spans: Vec<(usize, usize, &str)> = Vec::with_capacity(tensors.len());
    for (name, info) in tensors {
        let (start, end) = info.data_offsets;
        if end < start || end as u64 > data_len {
            return Err(format!(
                "has tensor {name} at bytes {start}..{end}, past the end of its {data_len} bytes of data (truncated or damaged)"
            ));
        }
        spans.push((start, end, name));
    }
    spans.sort();
    for pair in spans.windows(2) {
        if pair[1].0 < pair[0].1 {
            return Err(format!(
                "has tensors {} and {} at overlapping bytes (a damaged header)",
                pair[0].2, pair[1].2
            ));
        }
    }
    Ok(())
}

/// Bytes of the file read at once while a tensor is converted to f32.
const READ_CHUNK: usize = 4 << 20;

/// Little-endian `bytes` of `dtype` (F32, F16 or BF16) into `out`.
fn convert(dtype: Dtype, bytes: &[u8], out: &mut [f32]) {
    match dtype {
        Dtype::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        Dtype::F16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
            }
        }
        _ => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16);
            }
        }
    }
}

/// IEEE 754 half to single precision, subnormals, infinities and NaN included.
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let mant = u32::from(h & 0x3ff);
    let bits = match (exp, mant) {
        (0, 0) => sign,
        (0, m) => {
            // subnormal: normalise the mantissa
            let shift = m.leading_zeros() - 21;
            sign | ((113 - shift) << 23) | (((m << shift) & 0x3ff) << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_converts_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x0200), 2f32.powi(-15));
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), 0x8000_0000);
    }

    #[test]
    fn transpose_swaps_rows_and_columns() {
        let t = Tensor {
            shape: vec![2, 3],
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        assert_eq!(t.transposed().data, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert_eq!(t.rows(1, 2).data, [4.0, 5.0, 6.0]);
    }
}
