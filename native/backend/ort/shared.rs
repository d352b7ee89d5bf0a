//! The weights of a cache entry, mapped once and handed to every session of the model as
//! shared initializers, so that ONNX Runtime pre-packs each weight once for all of them.
//!
//! A session that loads `model.onnx` itself keeps its own pre-packed copy of every weight, so a
//! second session of the same entry would double the resident weights. ONNX Runtime shares pre-packed buffers between sessions only for
//! initializers given through `AddInitializer` with one `PrepackedWeightsContainer`.
use std::fs::File;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Arc;

use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::builder::{PrepackedWeights, SessionBuilder};
use ort::sys::ONNXTensorElementDataType as Ty;
use ort::value::DynValue;
use ort::AsPointer;

use super::onnx_proto::externals;
use crate::error::{Error, Result};

/// The mapped data file and a value over each of its weights; the sessions built with it
/// read the weights from the mapping, so it lives as long as they do.
pub struct SharedWeights {
    values: Vec<(String, Arc<DynValue>)>,
    packed: PrepackedWeights,
    map: memmap2::MmapMut,
}

impl SharedWeights {
    /// Maps `data` (the entry's weights file) and wraps each weight `model` stores there.
    pub fn open(model: &Path, data: &Path) -> Result<Self> {
        let bytes = std::fs::read(model).map_err(|e| Error::model_file(model, e.to_string()))?;
        let externals = externals(&bytes).map_err(|e| Error::model_file(model, e))?;
        let file = File::open(data).map_err(|e| Error::model_file(data, e.to_string()))?;
        // SAFETY: a private copy-on-write mapping: another process changing the file is the
        // cache's concern (entries are checked, then only renamed into place, never rewritten).
        let mut map = unsafe { memmap2::MmapOptions::new().map_copy(&file) }
            .map_err(|e| Error::model_file(data, format!("cannot be mapped ({e})")))?;
        let info = MemoryInfo::new(
            AllocationDevice::CPU,
            0,
            AllocatorType::Device,
            MemoryType::Default,
        )?;
        let base = map.as_mut_ptr();
        let mut values = Vec::new();
        for w in externals {
            if w.offset
                .checked_add(w.length)
                .is_none_or(|end| end > map.len())
            {
                return Err(Error::model_file(
                    data,
                    format!("is shorter than the weight {} needs", w.name),
                ));
            }
            let Some(ty) = element_type(w.data_type) else {
                continue;
            };
            // SAFETY: in bounds (checked above); the mapping outlives the value.
            let value = unsafe { tensor_over(&info, base.add(w.offset), w.length, &w.dims, ty)? };
            values.push((w.name, Arc::new(value)));
        }
        Ok(SharedWeights {
            values,
            packed: PrepackedWeights::new(),
            map,
        })
    }

    /// Drops the mapped pages that the sessions' pre-packing read: they now hold packed copies,
    /// and a page read again (an embedding row, a norm) comes back from the file. Without
    /// it the whole file stays resident.
    pub fn release_pages(&self) {
        // SAFETY: a private mapping that nothing wrote: dropped pages are read again from the file.
        #[cfg(unix)]
        let _ = unsafe {
            self.map
                .unchecked_advise(memmap2::UncheckedAdvice::DontNeed)
        };
    }

    /// `builder` with every weight given as a shared initializer.
    pub fn apply(&self, mut builder: SessionBuilder) -> Result<SessionBuilder> {
        builder = builder.with_prepacked_weights(&self.packed)?;
        for (name, value) in &self.values {
            builder = builder.with_initializer(name, Arc::clone(value))?;
        }
        Ok(builder)
    }
}

/// An ONNX Runtime tensor over `length` bytes at `data`, without a copy.
///
/// # Safety
/// `data` must point to `length` readable bytes that stay mapped, unmoved and unwritten for as
/// long as the value (and any session that holds it) lives, laid out as `dims` of `ty`.
unsafe fn tensor_over(
    info: &MemoryInfo,
    data: *mut u8,
    length: usize,
    dims: &[i64],
    ty: Ty,
) -> Result<DynValue> {
    let mut out: *mut ort::sys::OrtValue = std::ptr::null_mut();
    let status = (ort::api().CreateTensorWithDataAsOrtValue)(
        info.ptr(),
        data.cast(),
        length,
        dims.as_ptr(),
        dims.len(),
        ty,
        &mut out,
    );
    ort::Error::result_from_status(status)?;
    let out = NonNull::new(out).ok_or_else(|| Error::Internal("no value from ORT".into()))?;
    Ok(DynValue::from_ptr(out, Some(&Allocator::default())))
}

fn element_type(onnx: i32) -> Option<Ty> {
    Some(match onnx {
        1 => Ty::ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
        2 => Ty::ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8,
        3 => Ty::ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8,
        6 => Ty::ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32,
        7 => Ty::ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64,
        10 => Ty::ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16,
        16 => Ty::ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16,
        _ => return None,
    })
}
