//! Turns an `Encoder` into an ONNX graph with its weights as initializers. Inputs `input_ids`
//! and `attention_mask` (`[batch, sequence]`, int64); output `sentence_embedding`
//! (`[batch, dim]`), pooled and through the snapshot's `Dense` modules: not normalised for a
//! session (the engine normalises), normalised in an exported file, which also outputs
//! `last_hidden_state`. Each projection's precision comes from `rules`; the int8 ones are built
//! by `int8`. The attention (and its masks) is in `attention.rs`, the norms in `norms.rs`.
use ort::editor::Model;
use ort::operator::Attribute;

use super::activation::{activate, floor};
use super::int8::Int8;
use super::masks::Masks;
use super::plumbing::{
    float_outlet, int64_matrix, Builder, FLOAT, LOGITS, OUTPUT, TOKEN_STATES, TOKEN_TYPES,
};
use super::pool::{l2_normalize, pool};
use super::rope::{self, RopeTables};
use super::rules::{Numerics, Projection, Rule};
use crate::arch::{Dense, Encoder, FeedForward, Layer, Linear, Residual};
use crate::error::Result;
use crate::pooling::Pooling;

/// What the graph outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outputs {
    /// `sentence_embedding`, not normalised (the engine normalises): a session's.
    Session,
    /// A file for other runtimes: `sentence_embedding` normalised and the final token states as
    /// `last_hidden_state` (`[batch, sequence, hidden]`), as their feature-extraction pipelines
    /// expect.
    Embeddings,
    /// A reranker's file: its head's raw score as `logits` (`[batch, 1]`), as transformers'
    /// export of a `*ForSequenceClassification` names it.
    Logits,
}

/// The graph of `encoder` with `outputs`. Takes the encoder's tensors as it goes (each layer is
/// released once it is in the graph), so that the weights are not held twice.
pub fn model(
    encoder: &mut Encoder,
    pooling: Pooling,
    max_positions: usize,
    outputs: Outputs,
    numerics: Numerics,
) -> Result<Model> {
    let half = numerics.half();
    // A pre-norm model's residual stream accumulates in float32 even in a half-precision graph,
    // and its softmax runs in float32: its sums grow layer by layer (gte-Qwen2 is reported to
    // overflow plain fp16).
    let wide_residual = half && encoder.residual == Residual::PreNorm;
    let mut g = Emitter::new(numerics, encoder, max_positions, wide_residual)?;
    let x = g.embeddings(encoder)?;
    encoder.word_embeddings = Default::default();
    encoder.position_embeddings = None;
    let mut x = if wide_residual {
        g.b.cast(&x, FLOAT)?
    } else {
        x
    };
    // each layer's tensors are released once they are in the graph
    for layer in std::mem::take(&mut encoder.layers) {
        x = match encoder.residual {
            Residual::PostNorm => g.post_norm_layer(&x, &layer, encoder)?,
            Residual::PreNorm => g.pre_norm_layer(&x, &layer, encoder, wide_residual)?,
        };
    }
    if let Some(norm) = &encoder.final_norm {
        x = g.norm_of(&x, norm, wide_residual)?;
    }
    if half && !wide_residual {
        x = g.b.cast(&x, FLOAT)?;
    }
    let mask = g.masks.mask.clone();
    let dim = encoder.dim();
    let mut pooled = pool(&mut g.b, &x, &mask, pooling)?;
    for dense in std::mem::take(&mut encoder.dense) {
        pooled = g.dense(&pooled, &dense)?;
    }
    let name = match outputs {
        Outputs::Logits => LOGITS,
        _ => OUTPUT,
    };
    let mut outlets = vec![float_outlet(name, &["batch"], Some(dim))];
    if outputs == Outputs::Embeddings {
        pooled = l2_normalize(&mut g.b, &pooled)?;
        g.b.identity(&x, TOKEN_STATES)?;
        let hidden = Some(encoder.hidden);
        outlets.push(float_outlet(TOKEN_STATES, &["batch", "sequence"], hidden));
    }
    g.b.identity(&pooled, name)?;
    g.b.finish(outlets)
}

/// The transformer's graph as it is built: the builder, the values every layer reads, and the
/// int8 rules' record of the graph (int8 graphs only).
pub(super) struct Emitter {
    pub(super) b: Builder,
    pub(super) numerics: Numerics,
    pub(super) masks: Masks,
    /// The rotary tables of global layers, and of sliding ones where their base differs.
    rope: Option<(RopeTables, Option<RopeTables>)>,
    /// Softmax (and the bias) in float32 in a half-precision graph.
    pub(super) wide_softmax: bool,
    pub(super) int8: Option<Int8>,
}

impl Emitter {
    fn new(
        numerics: Numerics,
        e: &Encoder,
        max_positions: usize,
        wide_softmax: bool,
    ) -> Result<Self> {
        let mut inputs = vec![int64_matrix("input_ids"), int64_matrix("attention_mask")];
        if e.type_shift.is_some() {
            inputs.push(int64_matrix(TOKEN_TYPES));
        }
        let mut b = Builder::new(inputs, numerics.half())?;
        let half_bias = numerics.half() && !wide_softmax;
        let masks = Masks::new(&mut b, e, max_positions, half_bias)?;
        let rope = match &e.rotary {
            Some(r) => {
                let global = rope::tables(&mut b, r.dims, r.base, max_positions, &masks.seq_len)?;
                let local = match r.local_base {
                    Some(base) if base != r.base => Some(rope::tables(
                        &mut b,
                        r.dims,
                        base,
                        max_positions,
                        &masks.seq_len,
                    )?),
                    _ => None,
                };
                Some((global, local))
            }
            None => None,
        };
        Ok(Emitter {
            b,
            numerics,
            masks,
            rope,
            wide_softmax,
            int8: numerics.int8().map(Int8::new),
        })
    }

    /// The rotary tables a layer rotates with.
    pub(super) fn rope_of(&self, sliding: bool) -> Option<&RopeTables> {
        let (global, local) = self.rope.as_ref()?;
        Some(match local {
            Some(local) if sliding => local,
            _ => global,
        })
    }

    fn embeddings(&mut self, e: &Encoder) -> Result<String> {
        let table = self.b.tensor("word_embeddings", &e.word_embeddings)?;
        let mut x = self.b.op(
            "Gather",
            &[&table, "input_ids"],
            vec![Attribute::new("axis", 0i64)?],
        )?;
        if let Some(positions) = &e.position_embeddings {
            let table = self.b.tensor("position_embeddings", positions)?;
            let here = self.b.first_rows(&table, &self.masks.seq_len)?;
            x = self.b.op("Add", &[&x, &here], vec![])?;
        }
        if let Some(shift) = &e.type_shift {
            // row 0 is in the word table already; a type-1 token adds row 1 - row 0
            let shift = self.b.tensor("type_shift", shift)?;
            let types = self.b.cast(TOKEN_TYPES, self.b.float_type())?;
            let axis = self.b.ints("axes", &[2])?;
            let types = self.b.op("Unsqueeze", &[&types, &axis], vec![])?;
            let shifted = self.b.op("Mul", &[&types, &shift], vec![])?;
            x = self.b.op("Add", &[&x, &shifted], vec![])?;
        }
        match &e.embedding_norm {
            Some(norm) => self.norm(&x, norm),
            None => Ok(x),
        }
    }

    fn post_norm_layer(&mut self, x: &str, layer: &Layer, e: &Encoder) -> Result<String> {
        let attended = self.attention(x, layer, e)?;
        // Add then LayerNormalization: ONNX Runtime's fused SkipLayerNormalization ran slower
        // on the CPU (benchmark/README.md).
        let sum = self.b.op("Add", &[x, &attended], vec![])?;
        let x = match &layer.norm1 {
            Some(norm) => self.norm(&sum, norm)?,
            None => sum,
        };
        let transformed = self.feed_forward(&x, &layer.ffn)?;
        let sum = self.b.op("Add", &[&x, &transformed], vec![])?;
        self.norm(&sum, &layer.norm2)
    }

    /// `x + post1(attn(norm1(x)))`, then `x + post2(ffn(norm2(x)))` (the post norms only where
    /// the layer has them); with `wide`, `x` is float32 and each block runs in the graph's half
    /// precision between its norm and its sum.
    fn pre_norm_layer(
        &mut self,
        x: &str,
        layer: &Layer,
        e: &Encoder,
        wide: bool,
    ) -> Result<String> {
        let normed = self.block_input(x, layer.norm1.as_ref(), wide)?;
        let mut attended = self.attention(&normed, layer, e)?;
        if let Some(norm) = &layer.post_attention_norm {
            attended = self.norm(&attended, norm)?;
        }
        let attended = self.widened(attended, wide)?;
        let x = self.b.op("Add", &[x, &attended], vec![])?;
        let normed = self.block_input(&x, Some(&layer.norm2), wide)?;
        let mut transformed = self.feed_forward(&normed, &layer.ffn)?;
        if let Some(norm) = &layer.post_ffn_norm {
            transformed = self.norm(&transformed, norm)?;
        }
        let transformed = self.widened(transformed, wide)?;
        self.b.op("Add", &[&x, &transformed], vec![])
    }

    /// `x @ weight^T * scale + bias * scale` as `rules` says this projection multiplies.
    pub(super) fn project(
        &mut self,
        x: &str,
        linear: &Linear,
        scale: f32,
        projection: Projection,
    ) -> Result<String> {
        match (self.numerics.rule(projection), &mut self.int8) {
            (Rule::Int8 { first_row }, Some(int8)) => {
                int8.linear(&mut self.b, x, linear, scale, first_row)
            }
            _ => self.float_linear(x, linear, scale),
        }
    }

    /// In the graph's float precision; the weight is transposed once, here.
    fn float_linear(&mut self, x: &str, linear: &Linear, scale: f32) -> Result<String> {
        let bias = linear.scaled_bias(scale);
        let w = &linear.weight;
        let shape = [w.shape[1], w.shape[0]];
        let weight = self
            .b
            .floats_with("weight", &shape, |out| w.transpose_into(scale, out))?;
        let y = self.b.op("MatMul", &[x, &weight], vec![])?;
        match bias {
            Some(bias) => {
                let bias = self.b.floats("bias", &[bias.len()], &bias)?;
                self.b.op("Add", &[&y, &bias], vec![])
            }
            None => Ok(y),
        }
    }

    fn feed_forward(&mut self, x: &str, ffn: &FeedForward) -> Result<String> {
        match ffn {
            FeedForward::Activation { up, act, down } => {
                let h = self.project(x, up, 1.0, Projection::FeedForwardUp)?;
                let h = activate(&mut self.b, &h, *act)?;
                if let (Some(int8), Some(floor)) = (&mut self.int8, floor(*act)) {
                    int8.note_floor(&h, floor);
                }
                let down_rule = Projection::FeedForwardDown { bounded: true };
                self.project(&h, down, 1.0, down_rule)
            }
            FeedForward::Gated {
                gate,
                up,
                act,
                down,
            } => {
                let u = self.project(x, up, 1.0, Projection::FeedForwardUp)?;
                let g = self.project(x, gate, 1.0, Projection::FeedForwardUp)?;
                let activated = activate(&mut self.b, &g, *act)?;
                let h = self.b.op("Mul", &[&u, &activated], vec![])?;
                let down_rule = Projection::FeedForwardDown { bounded: false };
                self.project(&h, down, 1.0, down_rule)
            }
        }
    }

    /// A sentence-transformers `Dense` module (or a reranker's head layer) on the pooled
    /// float32 vectors, in float32.
    fn dense(&mut self, x: &str, dense: &Dense) -> Result<String> {
        let w = dense.linear.weight.transposed();
        let weight = self.b.initializer("dense_weight", &w.shape, &w.f32())?;
        let mut y = self.b.op("MatMul", &[x, &weight], vec![])?;
        if let Some(bias) = &dense.linear.bias {
            let bias = self.b.initializer("dense_bias", &bias.shape, &bias.f32())?;
            y = self.b.op("Add", &[&y, &bias], vec![])?;
        }
        let y = activate(&mut self.b, &y, dense.act)?;
        match &dense.norm {
            // float32 here even in a half-precision graph, as the pooled vector is
            Some(norm) => self.norm_of(&y, norm, true),
            None => Ok(y),
        }
    }
}
