//! Arguments read from JavaScript values, so that a value of the wrong type or an unknown name is
//! an `ERR_INPUT` that names it; results handed back; errors and panics turned into `Error`s.
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunctionCallMode, UnknownReturnValue};
use napi::JsValue;

use crate::arch::AttentionDirection;
use crate::choices::{BackendKind, Choice, Int8SchemeOption, Precision, WeightsKind};
use crate::error::Error as EngineError;
use crate::events::{level_name, Event, FieldValue, Sink};
use crate::settings::Options;

pub type EngineResult<T> = std::result::Result<T, EngineError>;

/// A JavaScript `Error` with `code` set to the kind of failure.
pub fn js_error(env: &Env, e: EngineError) -> Error {
    let coded = Error::new(e.code(), e.to_string());
    Error::from(JsError::from(coded).into_unknown(*env))
}

/// Runs engine code so that neither an error nor a panic escapes unconverted.
pub fn guarded<T>(f: impl FnOnce() -> EngineResult<T>) -> EngineResult<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        Err(EngineError::Internal(what))
    })
}

pub fn model_dir(value: Unknown) -> EngineResult<PathBuf> {
    let refused = |what: &str| {
        EngineError::Input(format!(
            "modelDir must be a string (the folder of a Hugging Face model snapshot), got {what}"
        ))
    };
    match value.get_type() {
        // SAFETY: the value was just checked to be a string.
        Ok(ValueType::String) => unsafe { value.cast::<String>() }
            .map(PathBuf::from)
            .map_err(|e| refused(&e.reason)),
        Ok(other) => Err(refused(type_name(other))),
        Err(e) => Err(refused(&e.reason)),
    }
}

/// A load's options, and its `logger` (which napi's conversion of the options leaves out).
pub fn load_options(env: &Env, value: Option<Unknown>) -> EngineResult<(Options, Option<Sink>)> {
    Ok((options(env, value)?, logger(value)?))
}

pub fn options(env: &Env, value: Option<Unknown>) -> EngineResult<Options> {
    let Some(value) = value else {
        return Ok(Options::default());
    };
    match value.get_type().ok() {
        Some(ValueType::Undefined | ValueType::Null) => return Ok(Options::default()),
        Some(ValueType::Object) => {}
        other => {
            return Err(EngineError::Input(format!(
                "options must be an object, got {}",
                other.map_or("an unreadable value", type_name)
            )))
        }
    }
    // SAFETY: the value was just checked to be an object.
    let object: Object = unsafe { value.cast() }.map_err(|e| EngineError::Input(e.reason))?;
    check_name::<BackendKind>(&object, "backend")?;
    check_name::<Precision>(&object, "dtype")?;
    check_name::<WeightsKind>(&object, "weights")?;
    check_name::<AttentionDirection>(&object, "attention")?;
    check_name::<Int8SchemeOption>(&object, "int8Scheme")?;
    // SAFETY: `env` and `value` are this call's own, alive for the conversion.
    unsafe { Options::from_napi_value(env.raw(), value.raw()) }
        .map_err(|e| EngineError::Input(format!("options: {}", e.reason)))
}

/// The string `object[key]`, when given, is one of `T`'s names (napi's own conversion would
/// refuse it without saying which names there are).
fn check_name<T: Choice>(object: &Object, key: &str) -> EngineResult<()> {
    match object.get::<Unknown>(key) {
        Ok(Some(value)) if value.get_type().ok() == Some(ValueType::String) => {
            // SAFETY: the value was just checked to be a string.
            let name =
                unsafe { value.cast::<String>() }.map_err(|e| EngineError::Input(e.reason))?;
            T::parse(&name).map(drop).map_err(EngineError::Input)
        }
        _ => Ok(()),
    }
}

pub fn texts(texts: Unknown) -> EngineResult<Vec<String>> {
    strings(texts, "embed(texts)", "texts")
}

/// A reranker's documents: an array of strings.
pub fn documents(documents: Unknown) -> EngineResult<Vec<String>> {
    strings(documents, "rerank(query, documents)", "documents")
}

/// A reranker's query: a string.
pub fn query(query: Unknown) -> EngineResult<String> {
    let refused = |e: Error| EngineError::Input(format!("rerank(query, documents): {}", e.reason));
    match query.get_type().map_err(refused)? {
        // SAFETY: the value was just checked to be a string.
        ValueType::String => unsafe { query.cast::<String>() }.map_err(refused),
        other => Err(EngineError::Input(format!(
            "rerank(query, documents): query must be a string, got {}",
            type_name(other)
        ))),
    }
}

/// An array of strings, the argument `name` of `call`.
fn strings(value: Unknown, call: &str, name: &str) -> EngineResult<Vec<String>> {
    let refused = |e: Error| EngineError::Input(format!("{call}: {}", e.reason));
    if !value.is_array().map_err(refused)? {
        return Err(EngineError::Input(format!(
            "{call}: {name} must be an array of strings, got {}",
            type_name(value.get_type().map_err(refused)?)
        )));
    }
    // SAFETY: the value was just checked to be an array.
    let array: Array = unsafe { value.cast() }.map_err(refused)?;
    (0..array.len())
        .map(|i| {
            let unreadable = |e: Error| {
                EngineError::Input(format!(
                    "{call}: {name}[{i}] could not be read ({})",
                    e.reason
                ))
            };
            let item: Unknown = array.get(i).map_err(unreadable)?.ok_or_else(|| {
                EngineError::Input(format!("{call}: the array changed while read"))
            })?;
            match item.get_type().map_err(refused)? {
                // SAFETY: the item was just checked to be a string.
                ValueType::String => unsafe { item.cast::<String>() }.map_err(refused),
                other => Err(EngineError::Input(format!(
                    "{call}: {name}[{i}] is {}, expected a string",
                    type_name(other)
                ))),
            }
        })
        .collect()
}

fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Undefined => "undefined",
        ValueType::Null => "null",
        ValueType::Boolean => "a boolean",
        ValueType::Number => "a number",
        ValueType::String => "a string",
        ValueType::Symbol => "a symbol",
        ValueType::Object => "an object",
        ValueType::Function => "a function",
        ValueType::BigInt => "a bigint",
        _ => "an unsupported value",
    }
}

/// Hands the engine's one contiguous buffer to JavaScript without a copy: one `ArrayBuffer`
/// owning the vectors, and a `Float32Array` view of `dim` floats per text.
pub fn typed_array_views(
    env: &Env,
    mut vectors: Vec<f32>,
    dim: usize,
) -> Result<Vec<Float32ArraySlice<'_>>> {
    if vectors.is_empty() {
        return Ok(Vec::new());
    }
    let count = vectors.len() / dim;
    let bytes = vectors.len() * std::mem::size_of::<f32>();
    let data = vectors.as_mut_ptr().cast::<u8>();
    // SAFETY: `data` points at `bytes` bytes of the Vec's heap block, which the buffer owns from
    // here (the Vec moves into the finalize hint and is dropped by it), and a Vec's heap block
    // does not move when the Vec itself does.
    let buffer = unsafe { ArrayBuffer::from_external(env, data, bytes, vectors, |_, v| drop(v)) }?;
    (0..count)
        .map(|i| {
            Float32ArraySlice::from_arraybuffer(&buffer, i * dim * std::mem::size_of::<f32>(), dim)
        })
        .collect()
}

/// What a JavaScript `logger(level, event, fields)` is called with.
type LogArgs = FnArgs<(String, String, BTreeMap<String, Either3<f64, String, bool>>)>;

/// `options.logger`, when given: a function that receives the model's events, called on the JS
/// thread after each happens (a weak reference: it does not keep the process alive).
pub fn logger(options: Option<Unknown>) -> EngineResult<Option<Sink>> {
    let refused = |e: Error| EngineError::Input(format!("options.logger: {}", e.reason));
    let Some(options) = options.filter(|o| o.get_type().ok() == Some(ValueType::Object)) else {
        return Ok(None);
    };
    // SAFETY: the value was just checked to be an object.
    let object: Object = unsafe { options.cast() }.map_err(refused)?;
    let Some(value) = object.get::<Unknown>("logger").map_err(refused)? else {
        return Ok(None);
    };
    match value.get_type().map_err(refused)? {
        ValueType::Undefined | ValueType::Null => return Ok(None),
        ValueType::Function => {}
        other => {
            return Err(EngineError::Input(format!(
                "options.logger must be a function (level, event, fields) => void, got {}",
                type_name(other)
            )))
        }
    }
    // SAFETY: the value was just checked to be a function.
    let function: Function<LogArgs, UnknownReturnValue> =
        unsafe { value.cast() }.map_err(refused)?;
    let tsfn = function
        .build_threadsafe_function::<LogArgs>()
        .callee_handled::<false>()
        .weak::<true>()
        .build()
        .map_err(refused)?;
    Ok(Some(Arc::new(move |event: Event| {
        let fields = event.fields.into_iter().map(|(k, v)| (k, js_field(v)));
        let args = (
            level_name(event.level).to_string(),
            event.name,
            fields.collect(),
        );
        tsfn.call(args.into(), ThreadsafeFunctionCallMode::NonBlocking);
    })))
}

fn js_field(value: FieldValue) -> Either3<f64, String, bool> {
    match value {
        FieldValue::Number(n) => Either3::A(n),
        FieldValue::Text(s) => Either3::B(s),
        FieldValue::Bool(b) => Either3::C(b),
    }
}
