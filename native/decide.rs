//! The one decision of `init`: which weights run, and which backends to try in which order at
//! which precision, from the settings, the snapshot and the machine. Pure, so a table tests it;
//! `load` carries it out and records why a tried backend did not start.
use std::path::Path;

use crate::choices::Choice;
use crate::error::{Error, Result};
use crate::settings::{BackendKind, Precision, Settings, WeightsKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Mlx,
    Cuda,
    Cpu,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Mlx => "mlx",
            Target::Cuda => "cuda",
            Target::Cpu => "cpu",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    Safetensors,
    Onnx,
}

/// What the snapshot offers.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    pub path: &'a Path,
    pub has_safetensors: bool,
    /// Its architecture is one this addon builds a graph for from `model.safetensors`.
    pub buildable: bool,
}

/// What this build and machine offer.
#[derive(Debug, Clone, Copy)]
pub struct Machine {
    /// The MLX backend is compiled in.
    pub mlx_built: bool,
    /// `auto` prefers MLX (Apple Silicon with Metal).
    pub mlx_default: bool,
}

impl Machine {
    pub fn this() -> Machine {
        Machine {
            mlx_built: cfg!(mlx),
            mlx_default: cfg!(all(mlx, target_os = "macos")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub target: Target,
    /// The graph's precision; `None` for an ONNX file, which runs as it is.
    pub precision: Option<Precision>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub weights: Weights,
    /// Tried in order until one starts; never empty.
    pub attempts: Vec<Attempt>,
    /// Backends that `auto` passed over without trying, and why.
    pub skipped: Vec<(Target, String)>,
}

pub fn decide(settings: &Settings, snapshot: Snapshot, machine: Machine) -> Result<Decision> {
    let weights = weights(settings, snapshot)?;
    let dtype = settings.dtype;
    let onnx = weights == Weights::Onnx;
    if onnx && dtype.is_some_and(|d| d != Precision::Float32) {
        return Err(Error::Input(format!(
            "dtype '{}' converts the graph built from model.safetensors, but the weights chosen are an ONNX file, which runs as it is: leave dtype unset, or use weights 'safetensors'",
            dtype.map_or("", Precision::name)
        )));
    }
    let at = |target: Target| Attempt {
        target,
        precision: (!onnx).then(|| dtype.unwrap_or(default_precision(target))),
    };
    let int8 = dtype == Some(Precision::Int8);
    let bf16 = dtype == Some(Precision::BFloat16);
    let mlx_runs_it = settings.backend == BackendKind::Mlx
        || (settings.backend == BackendKind::Auto && machine.mlx_default);
    if bf16 && !mlx_runs_it {
        return Err(Error::Input(BF16_MLX_ONLY.into()));
    }
    let mut skipped = Vec::new();
    let backend = match (settings.gpu_device, settings.backend) {
        (Some(_), BackendKind::Auto | BackendKind::Cuda) => BackendKind::Cuda,
        (Some(n), other) => {
            return Err(Error::Input(format!(
                "device 'cuda:{n}' names a CUDA device, but backend is '{}': leave backend unset or 'cuda'",
                other.name()
            )))
        }
        (None, backend) => backend,
    };
    let attempts = match backend {
        BackendKind::Cpu => vec![at(Target::Cpu)],
        BackendKind::Cuda if int8 => return Err(Error::Input(INT8_CPU_ONLY.into())),
        BackendKind::Cuda => vec![at(Target::Cuda)],
        BackendKind::Mlx => {
            mlx_refusal(weights, dtype, machine).map_or(Ok(()), |(error, _)| Err(error))?;
            vec![at(Target::Mlx)]
        }
        BackendKind::Auto if machine.mlx_default => match mlx_refusal(weights, dtype, machine) {
            Some((_, reason)) => {
                skipped.push((Target::Mlx, reason));
                vec![at(Target::Cpu)]
            }
            None if bf16 => vec![at(Target::Mlx)],
            None => vec![at(Target::Mlx), at(Target::Cpu)],
        },
        BackendKind::Auto if int8 => {
            skipped.push((Target::Cuda, INT8_CPU_ONLY.into()));
            vec![at(Target::Cpu)]
        }
        BackendKind::Auto => vec![at(Target::Cuda), at(Target::Cpu)],
    };
    Ok(Decision {
        weights,
        attempts,
        skipped,
    })
}

const BF16_MLX_ONLY: &str =
    "dtype 'bfloat16' runs on MLX only (Apple Silicon); use 'float16' on CUDA, 'float32' or 'int8' on the CPU";

const INT8_CPU_ONLY: &str =
    "dtype 'int8' runs on the CPU only (ONNX Runtime's dynamically quantised MatMul has no CUDA kernel)";

/// Half precision on CUDA (tensor cores); float32 on the CPU and MLX.
fn default_precision(target: Target) -> Precision {
    match target {
        Target::Cuda => Precision::Float16,
        Target::Cpu | Target::Mlx => Precision::Float32,
    }
}

fn weights(settings: &Settings, snapshot: Snapshot) -> Result<Weights> {
    match settings.weights {
        WeightsKind::Auto if settings.onnx_file.is_some() => Ok(Weights::Onnx),
        WeightsKind::Auto if snapshot.has_safetensors && snapshot.buildable => {
            Ok(Weights::Safetensors)
        }
        WeightsKind::Auto | WeightsKind::Onnx => Ok(Weights::Onnx),
        WeightsKind::Safetensors if snapshot.has_safetensors => Ok(Weights::Safetensors),
        WeightsKind::Safetensors => Err(Error::model_file(
            snapshot.path,
            "has no model.safetensors (nor model.safetensors.index.json), which weights: 'safetensors' needs",
        )),
    }
}

/// Why MLX cannot run this request: the error for `backend: 'mlx'`, and the reason `auto` keeps.
fn mlx_refusal(
    weights: Weights,
    dtype: Option<Precision>,
    machine: Machine,
) -> Option<(Error, String)> {
    if !machine.mlx_built {
        let what = "backend 'mlx' runs on Apple Silicon (macOS arm64) builds; use 'auto', 'cpu' or 'cuda' here";
        return Some((Error::BackendUnavailable(what.into()), what.into()));
    }
    if weights == Weights::Onnx {
        let what = "MLX runs model.safetensors, and the weights chosen are an ONNX file: add model.safetensors to the snapshot, or use backend 'cpu'";
        return Some((Error::Input(what.into()), what.into()));
    }
    if dtype == Some(Precision::Int8) {
        let what = "dtype 'int8' is not available on MLX (expected 'float32' or 'float16')";
        return Some((Error::Input(what.into()), what.into()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Options;
    use Precision::{BFloat16 as Bf16, Float16 as F16, Float32 as F32, Int8 as I8};
    use Target::{Cpu, Cuda, Mlx};

    const LINUX: Machine = Machine {
        mlx_built: false,
        mlx_default: false,
    };
    const LINUX_MLX_TEST_BUILD: Machine = Machine {
        mlx_built: true,
        mlx_default: false,
    };
    const APPLE: Machine = Machine {
        mlx_built: true,
        mlx_default: true,
    };

    fn settings(backend: &str, dtype: Option<&str>, weights: &str, onnx_file: bool) -> Settings {
        let options = Options {
            backend: BackendKind::parse(backend).ok(),
            dtype: dtype.map(|d| Precision::parse(d).unwrap()),
            weights: WeightsKind::parse(weights).ok(),
            onnx_file: onnx_file.then(|| "model.onnx".into()),
            ..Options::default()
        };
        Settings::resolve(&options, |_| None).unwrap()
    }

    type Row = (
        &'static str,
        Option<&'static str>,
        &'static str,
        bool,
        bool,
        Machine,
        std::result::Result<(Weights, Vec<(Target, Option<Precision>)>, Vec<Target>), &'static str>,
    );

    #[test]
    fn the_decision_table() {
        use Weights::{Onnx, Safetensors as St};
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            // backend, dtype, weights, has safetensors, onnxFile given, machine => weights, attempts, skipped
            ("auto", None, "auto", true, false, LINUX, Ok((St, vec![(Cuda, Some(F16)), (Cpu, Some(F32))], vec![]))),
            ("auto", None, "auto", false, false, LINUX, Ok((Onnx, vec![(Cuda, None), (Cpu, None)], vec![]))),
            ("auto", None, "auto", true, true, LINUX, Ok((Onnx, vec![(Cuda, None), (Cpu, None)], vec![]))),
            ("auto", Some("float32"), "auto", true, false, LINUX, Ok((St, vec![(Cuda, Some(F32)), (Cpu, Some(F32))], vec![]))),
            ("auto", Some("int8"), "auto", true, false, LINUX, Ok((St, vec![(Cpu, Some(I8))], vec![Cuda]))),
            ("auto", None, "auto", true, false, LINUX_MLX_TEST_BUILD, Ok((St, vec![(Cuda, Some(F16)), (Cpu, Some(F32))], vec![]))),
            ("auto", None, "auto", true, false, APPLE, Ok((St, vec![(Mlx, Some(F32)), (Cpu, Some(F32))], vec![]))),
            ("auto", Some("float16"), "auto", true, false, APPLE, Ok((St, vec![(Mlx, Some(F16)), (Cpu, Some(F16))], vec![]))),
            ("auto", Some("int8"), "auto", true, false, APPLE, Ok((St, vec![(Cpu, Some(I8))], vec![Mlx]))),
            ("auto", None, "auto", false, false, APPLE, Ok((Onnx, vec![(Cpu, None)], vec![Mlx]))),
            ("cpu", None, "auto", true, false, LINUX, Ok((St, vec![(Cpu, Some(F32))], vec![]))),
            ("cpu", Some("float16"), "safetensors", true, false, LINUX, Ok((St, vec![(Cpu, Some(F16))], vec![]))),
            ("cpu", None, "onnx", true, false, LINUX, Ok((Onnx, vec![(Cpu, None)], vec![]))),
            ("cpu", Some("float32"), "onnx", true, false, LINUX, Ok((Onnx, vec![(Cpu, None)], vec![]))),
            ("cuda", None, "auto", true, false, LINUX, Ok((St, vec![(Cuda, Some(F16))], vec![]))),
            ("mlx", None, "auto", true, false, LINUX_MLX_TEST_BUILD, Ok((St, vec![(Mlx, Some(F32))], vec![]))),
            ("mlx", Some("float16"), "auto", true, false, APPLE, Ok((St, vec![(Mlx, Some(F16))], vec![]))),
            ("cpu", Some("int8"), "onnx", true, false, LINUX, Err("ERR_INPUT")),
            ("auto", Some("float16"), "auto", false, false, LINUX, Err("ERR_INPUT")),
            ("cpu", None, "safetensors", false, false, LINUX, Err("ERR_MODEL_FILE")),
            ("cuda", Some("int8"), "auto", true, false, LINUX, Err("ERR_INPUT")),
            ("mlx", None, "auto", true, false, LINUX, Err("ERR_BACKEND_UNAVAILABLE")),
            ("mlx", Some("int8"), "auto", true, false, APPLE, Err("ERR_INPUT")),
            ("mlx", None, "onnx", true, false, APPLE, Err("ERR_INPUT")),
            ("mlx", Some("bfloat16"), "auto", true, false, LINUX_MLX_TEST_BUILD, Ok((St, vec![(Mlx, Some(Bf16))], vec![]))),
            ("auto", Some("bfloat16"), "auto", true, false, APPLE, Ok((St, vec![(Mlx, Some(Bf16))], vec![]))),
            ("auto", Some("bfloat16"), "auto", true, false, LINUX, Err("ERR_INPUT")),
            ("cpu", Some("bfloat16"), "auto", true, false, APPLE, Err("ERR_INPUT")),
            ("cuda", Some("bfloat16"), "auto", true, false, LINUX, Err("ERR_INPUT")),
        ];
        for (backend, dtype, weights, has_safetensors, onnx_file, machine, expected) in rows {
            let row = format!("{backend} {dtype:?} {weights} st={has_safetensors} onnxFile={onnx_file} {machine:?}");
            let snapshot = Snapshot {
                path: Path::new("/snapshot"),
                has_safetensors,
                buildable: true,
            };
            let got = decide(
                &settings(backend, dtype, weights, onnx_file),
                snapshot,
                machine,
            );
            match (got, expected) {
                (Ok(d), Ok((w, attempts, skipped))) => {
                    assert_eq!(d.weights, w, "{row}");
                    let got: Vec<_> = d.attempts.iter().map(|a| (a.target, a.precision)).collect();
                    assert_eq!(got, attempts, "{row}");
                    let got: Vec<_> = d.skipped.iter().map(|s| s.0).collect();
                    assert_eq!(got, skipped, "{row}");
                    assert!(
                        d.skipped.iter().all(|s| !s.1.is_empty()),
                        "{row}: a reason for each"
                    );
                }
                (Err(e), Err(code)) => assert_eq!(e.code(), code, "{row}: {e}"),
                (got, expected) => panic!("{row}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn an_architecture_without_a_graph_builder_runs_its_onnx_file() {
        let snapshot = Snapshot {
            path: Path::new("/snapshot"),
            has_safetensors: true,
            buildable: false,
        };
        let d = decide(&settings("auto", None, "auto", false), snapshot, LINUX).unwrap();
        assert_eq!(d.weights, Weights::Onnx);
        let d = decide(
            &settings("auto", None, "safetensors", false),
            snapshot,
            LINUX,
        )
        .unwrap();
        assert_eq!(
            d.weights,
            Weights::Safetensors,
            "explicit: open_weights says why not"
        );
    }
}
