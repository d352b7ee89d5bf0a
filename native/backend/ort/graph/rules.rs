//! The numeric policy of a graph, decided once and handed to the emitter as data: the graph's
//! precision, and for each kind of projection how it multiplies.
use crate::choices::{Int8SchemeOption, Precision};

/// How the graph computes: its precision, and with int8 the scheme.
#[derive(Debug, Clone, Copy)]
pub struct Numerics {
    pub precision: Precision,
    pub int8: Int8Scheme,
}

/// The projections of a transformer block, as far as precision tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// q, k and v: they read the attention's first position, where attention sinks.
    AttentionInput,
    AttentionOutput,
    /// The FFN's up and gate projections.
    FeedForwardUp,
    /// The FFN's down projection; `bounded`: its input is bounded below (after GELU or ReLU).
    FeedForwardDown {
        bounded: bool,
    },
}

/// How one projection multiplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// In the graph's float precision (float32 in an int8 graph).
    Float,
    /// Weights quantised per output column, activations per row (`int8.rs`).
    Int8 { first_row: FirstRow },
}

/// How an int8 projection treats the first position's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstRow {
    AsTheRest,
    /// Quantised twice: the row, then what its quantisation left out.
    Refined,
}

impl Numerics {
    /// Float weights and activations in float16.
    pub fn half(&self) -> bool {
        self.precision == Precision::Float16
    }

    pub fn int8(&self) -> Option<Int8Scheme> {
        (self.precision == Precision::Int8).then_some(self.int8)
    }

    /// The rule of a projection. Under int8: q, k and v refine the first position's row (where
    /// one channel dominates, its per-row scale leaves the rest a level or two); the down
    /// projection after a gated activation (SwiGLU, GeGLU), whose input is signed and unbounded, stays float32
    /// (benchmark/README.md has the fidelity figures behind both).
    pub fn rule(&self, projection: Projection) -> Rule {
        if self.precision != Precision::Int8 {
            return Rule::Float;
        }
        match projection {
            Projection::AttentionInput => Rule::Int8 {
                first_row: FirstRow::Refined,
            },
            Projection::FeedForwardDown { bounded: false } => Rule::Float,
            _ => Rule::Int8 {
                first_row: FirstRow::AsTheRest,
            },
        }
    }
}

/// How `Precision::Int8` multiplies. Each quantises every activation row (token) to uint8 with
/// its own scale, so a text's vector does not depend on its batch-mates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int8Scheme {
    /// int8 weights: for CPUs with VNNI, whose u8 x s8 dot products have no 16-bit
    /// intermediate (ONNX Runtime's kernel for them is far faster than its u8 x u8 one).
    SignedWeights,
    /// int8 weights and activations in 7 bits (0..127): for CPUs without VNNI, whose u8 x s8
    /// kernel sums pairs of products in 16 bits, where 2 x 127 x 127 cannot saturate.
    SignedWeightsNarrowActivations,
    /// uint8 weights: exact with 8-bit activations on CPUs without VNNI, but their u8 x u8
    /// kernel is slow.
    UnsignedWeights,
}

impl Int8Scheme {
    pub fn name(self) -> &'static str {
        match self {
            Int8Scheme::SignedWeights => "s8",
            Int8Scheme::SignedWeightsNarrowActivations => "s8a7",
            Int8Scheme::UnsignedWeights => "u8",
        }
    }

    /// Bits of each activation row's levels.
    pub fn activation_bits(self) -> u32 {
        match self {
            Int8Scheme::SignedWeightsNarrowActivations => 7,
            _ => 8,
        }
    }

    /// The scheme the option names; `auto` (or none): the one this CPU runs fastest.
    pub fn from_option(option: Option<Int8SchemeOption>) -> Int8Scheme {
        match option {
            Some(Int8SchemeOption::S8) => Int8Scheme::SignedWeights,
            Some(Int8SchemeOption::S8a7) => Int8Scheme::SignedWeightsNarrowActivations,
            Some(Int8SchemeOption::U8) => Int8Scheme::UnsignedWeights,
            Some(Int8SchemeOption::Auto) | None => Int8Scheme::for_this_cpu(),
        }
    }

    /// The scheme this CPU runs fastest at the fidelity wanted.
    pub fn for_this_cpu() -> Int8Scheme {
        if crate::cpu::has_vnni() {
            Int8Scheme::SignedWeights
        } else if cfg!(target_arch = "x86_64") {
            Int8Scheme::SignedWeightsNarrowActivations
        } else {
            Int8Scheme::UnsignedWeights
        }
    }

    /// One line for `info().int8Scheme`.
    pub fn describe(self) -> String {
        let weights = if self == Int8Scheme::UnsignedWeights {
            "u8"
        } else {
            "s8"
        };
        format!(
            "{} ({}-bit u8 activations per row x {weights} weights per column; the attention's \
             first-position rows quantised twice; the FFN down projection after a gated activation in \
             float32; CPU {})",
            self.name(),
            self.activation_bits(),
            crate::cpu::features()
        )
    }
}
