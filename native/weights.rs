//! Tensors from `model.safetensors` (or its shards), read one at a time from the file in the
//! checkpoint's precision: the whole file is never held in memory next to the graph's copy.
use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use safetensors::tensor::{Dtype, Metadata, TensorInfo};
use serde::Deserialize;

use crate::error::{Error, Result};

/// A tensor in PyTorch's layout (row-major, `shape` outermost first), in the precision of the
/// checkpoint: a half-precision checkpoint stays half until a backend widens a tensor, so a
/// float16 graph or an MLX model never holds the whole model in f32.
#[derive(Debug, Clone)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub values: Values,
}

impl Default for Tensor {
    fn default() -> Tensor {
        Tensor::new(Vec::new(), Vec::new())
    }
}

#[derive(Debug, Clone)]
pub enum Values {
    F32(Vec<f32>),
    F16(Vec<f16>),
    Bf16(Vec<bf16>),
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
        Tensor {
            shape,
            values: Values::F32(data),
        }
    }

    pub fn len(&self) -> usize {
        match &self.values {
            Values::F32(v) => v.len(),
            Values::F16(v) => v.len(),
            Values::Bf16(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as f32: borrowed when they are, widened when half.
    pub fn f32(&self) -> Cow<'_, [f32]> {
        match &self.values {
            Values::F32(v) => Cow::Borrowed(v),
            Values::F16(v) => Cow::Owned(v.iter().map(|h| h.to_f32()).collect()),
            Values::Bf16(v) => Cow::Owned(v.iter().map(|h| h.to_f32()).collect()),
        }
    }

    /// The values as f32 to change in place (a half tensor is widened, once).
    pub fn f32_mut(&mut self) -> &mut Vec<f32> {
        if !matches!(self.values, Values::F32(_)) {
            self.values = Values::F32(self.f32().into_owned());
        }
        match &mut self.values {
            Values::F32(v) => v,
            _ => unreachable!("widened above"),
        }
    }

    /// Rows `start..end` of a 2-D tensor, in its precision.
    pub fn rows(&self, start: usize, end: usize) -> Tensor {
        let width = self.shape[1];
        let mut part = self.span(start * width, end * width);
        part.shape = vec![end - start, width];
        part
    }

    /// Values `start..end` in row-major order, as a 1-D tensor in its precision.
    pub fn span(&self, start: usize, end: usize) -> Tensor {
        let range = start..end;
        let values = match &self.values {
            Values::F32(v) => Values::F32(v[range].to_vec()),
            Values::F16(v) => Values::F16(v[range].to_vec()),
            Values::Bf16(v) => Values::Bf16(v[range].to_vec()),
        };
        Tensor {
            shape: vec![end - start],
            values,
        }
    }

    /// The row-major transpose of a 2-D tensor, in its precision.
    pub fn transposed(&self) -> Tensor {
        let (rows, cols) = (self.shape[0], self.shape[1]);
        let values = match &self.values {
            Values::F32(v) => Values::F32(transpose(v, rows, cols, |x| x)),
            Values::F16(v) => Values::F16(transpose(v, rows, cols, |x| x)),
            Values::Bf16(v) => Values::Bf16(transpose(v, rows, cols, |x| x)),
        };
        Tensor {
            shape: vec![cols, rows],
            values,
        }
    }

    /// This 2-D tensor transposed and times `scale`, in f32, into `out`.
    pub fn transpose_into(&self, scale: f32, out: &mut [f32]) {
        let (rows, cols) = (self.shape[0], self.shape[1]);
        match &self.values {
            Values::F32(v) => transpose_to(v, rows, cols, out, |x| x * scale),
            Values::F16(v) => transpose_to(v, rows, cols, out, |x| x.to_f32() * scale),
            Values::Bf16(v) => transpose_to(v, rows, cols, out, |x| x.to_f32() * scale),
        }
    }
}

fn transpose<T: Copy + Default, U: Copy + Default>(
    v: &[T],
    rows: usize,
    cols: usize,
    f: impl Fn(T) -> U,
) -> Vec<U> {
    let mut out = vec![U::default(); v.len()];
    transpose_to(v, rows, cols, &mut out, f);
    out
}

/// A tile at a time: a plain column walk misses the cache on every read of a large matrix.
fn transpose_to<T: Copy, U>(v: &[T], rows: usize, cols: usize, out: &mut [U], f: impl Fn(T) -> U) {
    const TILE: usize = 32;
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                let row = &v[r * cols..(r + 1) * cols];
                for c in c0..(c0 + TILE).min(cols) {
                    out[c * rows + r] = f(row[c]);
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
        self.has_key(&format!("{}{name}", self.prefix))
    }

    /// Whether the checkpoint has `key`, a full key (a task head's, outside the encoder's prefix).
    pub fn has_key(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    /// The key prefix of the encoder's tensors (`bert.`, `model.`, or none).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The tensor `name` (without the checkpoint's key prefix), in the checkpoint's precision.
    pub fn get(&self, name: &str) -> Result<Tensor> {
        self.get_key(&format!("{}{name}", self.prefix))
    }

    /// The tensor of the full key `key`.
    pub fn get_key(&self, key: &str) -> Result<Tensor> {
        self.read(key, None)
    }

    /// Row `row` of the 2-D tensor `key`, `[1, columns]`, read alone (two rows of a language
    /// model's output projection, without the vocabulary's other rows).
    pub fn get_key_row(&self, key: &str, row: usize) -> Result<Tensor> {
        self.read(key, Some(row))
    }

    /// The tensor `key`, or only its row `row`.
    fn read(&self, key: &str, row: Option<usize>) -> Result<Tensor> {
        let (shard, info) = self
            .tensors
            .get(key)
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
        let (skip, count, shape) = match row {
            None => (0, count, info.shape.clone()),
            Some(r) => match info.shape[..] {
                [rows, columns] if r < rows => (r * columns, columns, vec![1, columns]),
                _ => {
                    return Err(bad(format!(
                        "has tensor {key} of shape {:?}, which has no row {r}",
                        info.shape
                    )))
                }
            },
        };
        let mut file = File::open(&shard.path).map_err(|e| bad(format!("cannot be read ({e})")))?;
        let offset = shard.data_start + (start + skip * width) as u64;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| bad(format!("cannot be read ({e})")))?;
        // Read a chunk at a time: never the file's bytes and the values together.
        let mut read = |bytes: &mut [u8]| {
            file.read_exact(bytes)
                .map_err(|e| bad(format!("is truncated at tensor {key} ({e})")))
        };
        let values = match info.dtype {
            Dtype::F32 => Values::F32(read_values(count, &mut read, f32::from_le_bytes)?),
            Dtype::F16 => Values::F16(read_values(count, &mut read, f16::from_le_bytes)?),
            _ => Values::Bf16(read_values(count, &mut read, bf16::from_le_bytes)?),
        };
        Ok(Tensor { shape, values })
    }

    /// `get`, checking the shape against what the config implies.
    pub fn get_shaped(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.get_key_shaped(&format!("{}{name}", self.prefix), shape)
    }

    /// `get_key`, checking the shape against what the config implies.
    pub fn get_key_shaped(&self, key: &str, shape: &[usize]) -> Result<Tensor> {
        let tensor = self.get_key(key)?;
        if tensor.shape != shape {
            return Err(Error::model_file(
                &self.source,
                format!(
                    "has {key} of shape {:?}, but config.json implies {shape:?}",
                    tensor.shape
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
        .find(|f| !crate::paths::inside(f))
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

/// Bytes of the file read at once.
const READ_CHUNK: usize = 4 << 20;

/// `count` little-endian values of `N` bytes each, read a chunk at a time by `read`.
fn read_values<T: Copy + Default, const N: usize>(
    count: usize,
    read: &mut impl FnMut(&mut [u8]) -> Result<()>,
    from_le: fn([u8; N]) -> T,
) -> Result<Vec<T>> {
    let mut values = vec![T::default(); count];
    let mut chunk = vec![0u8; (READ_CHUNK / N * N).min(count * N)];
    for out in values.chunks_mut((chunk.len() / N).max(1)) {
        let bytes = &mut chunk[..out.len() * N];
        read(bytes)?;
        for (o, b) in out.iter_mut().zip(bytes.chunks_exact(N)) {
            *o = from_le(b.try_into().expect("chunks of N bytes"));
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A half-precision checkpoint stays half in memory; only a backend widens a tensor.
    #[test]
    fn half_tensors_are_read_in_their_precision() {
        let dir = std::env::temp_dir().join(format!("ssn-half-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let values = [1.5f32, -2.0, 0.25, 96.0];
        let bf16_bytes: Vec<u8> = values
            .iter()
            .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
            .collect();
        let f16_bytes: Vec<u8> = values
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect();
        let view = safetensors::tensor::TensorView::new;
        let tensors = [
            (
                "a.weight",
                view(Dtype::BF16, vec![2, 2], &bf16_bytes).expect("a"),
            ),
            (
                "b.weight",
                view(Dtype::F16, vec![2, 2], &f16_bytes).expect("b"),
            ),
        ];
        safetensors::serialize_to_file(tensors, None, &dir.join(SINGLE)).expect("written");
        let weights = Safetensors::open(&dir, "a.weight")
            .expect("opens")
            .expect("present");
        let a = weights.get_shaped("a.weight", &[2, 2]).expect("a");
        let b = weights.get_shaped("b.weight", &[2, 2]).expect("b");
        std::fs::remove_dir_all(&dir).ok();
        assert!(matches!(a.values, Values::Bf16(_)));
        assert!(matches!(b.values, Values::F16(_)));
        assert_eq!(a.f32()[..], values);
        assert_eq!(b.f32()[..], values);
    }

    #[test]
    fn transpose_swaps_rows_and_columns_in_every_precision() {
        let t = Tensor::new(vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(t.transposed().f32()[..], [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert_eq!(t.rows(1, 2).f32()[..], [4.0, 5.0, 6.0]);
        let half = Tensor {
            shape: vec![2, 3],
            values: Values::Bf16(t.f32().iter().map(|&v| bf16::from_f32(v)).collect()),
        };
        assert!(matches!(half.transposed().values, Values::Bf16(_)));
        assert_eq!(half.transposed().f32()[..], [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        let mut out = [0.0; 6];
        half.transpose_into(2.0, &mut out);
        assert_eq!(out, [2.0, 8.0, 4.0, 10.0, 6.0, 12.0]);
    }
}
