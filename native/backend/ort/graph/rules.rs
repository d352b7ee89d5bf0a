//! The numeric policy of a graph, decided once and handed to the emitter as data: the graph's
//! precision, and for each kind of projection how it multiplies.
use crate::settings::{Int8Scheme, Precision};

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
    /// projection after SwiGLU, whose input is signed and unbounded, stays float32
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
