//! The masks attention adds to its scores: padding, the causal triangle, and a sliding
//! window's band.
use ort::operator::Attribute;

use super::plumbing::{Builder, FLOAT, FLOAT16};
use crate::arch::{AttentionDirection, Encoder};
use crate::error::Result;

/// What a token may not attend to, as additive biases of the attention scores: 0 where it may,
/// -10000 where it may not (large enough to vanish in softmax, small enough for fp16).
pub(super) struct Masks {
    pub(super) seq_len: String,
    /// The attention mask as float32.
    pub(super) mask: String,
    /// `[batch, 1, 1 or seq, seq]`: padding (and the causal triangle).
    full: String,
    /// The same with the sliding window's band, on a model with sliding layers.
    pub(super) window: Option<String>,
    /// Each of the two with one more axis, for grouped-query attention's 5-D scores, made once.
    grouped: [Option<String>; 2],
}

impl Masks {
    /// `half`: the biases in float16 (for a half-precision softmax).
    pub(super) fn new(
        b: &mut Builder,
        e: &Encoder,
        max_positions: usize,
        half: bool,
    ) -> Result<Masks> {
        let seq_len = b.op(
            "Shape",
            &["input_ids"],
            vec![Attribute::new("start", 1i64)?, Attribute::new("end", 2i64)?],
        )?;
        let mask = b.cast("attention_mask", FLOAT)?;
        let one = b.scalar32(1.0)?;
        let minus_one = b.op("Sub", &[&mask, &one], vec![])?;
        let big = b.scalar32(10000.0)?;
        let bias = b.op("Mul", &[&minus_one, &big], vec![])?;
        let axes = b.ints("axes", &[1, 2])?;
        let mut full = b.op("Unsqueeze", &[&bias, &axes], vec![])?; // [batch, 1, 1, seq]
        if e.direction == AttentionDirection::Causal {
            let causal = causal_bias(b, &seq_len)?;
            full = b.op("Add", &[&full, &causal], vec![])?; // [batch, 1, seq, seq]
        }
        let sliding = e.layers.iter().any(|l| l.sliding);
        let mut window = match e.window {
            Some(w) if sliding => {
                let band = window_band(b, w, max_positions, &seq_len)?;
                Some(b.op("Add", &[&full, &band], vec![])?)
            }
            _ => None,
        };
        if half {
            full = b.cast(&full, FLOAT16)?;
            window = window.map(|w| b.cast(&w, FLOAT16)).transpose()?;
        }
        Ok(Masks {
            seq_len,
            mask,
            full,
            window,
            grouped: [None, None],
        })
    }

    /// The bias of a sliding or a full layer, for grouped-query attention or not.
    pub(super) fn bias(&mut self, b: &mut Builder, sliding: bool, grouped: bool) -> Result<String> {
        let plain = match (&self.window, sliding) {
            (Some(window), true) => window.clone(),
            _ => self.full.clone(),
        };
        if !grouped {
            return Ok(plain);
        }
        let slot = &mut self.grouped[usize::from(sliding)];
        if let Some(bias) = slot {
            return Ok(bias.clone());
        }
        let one = b.ints("axes", &[1])?;
        let bias = b.op("Unsqueeze", &[&plain, &one], vec![])?;
        *slot = Some(bias.clone());
        Ok(bias)
    }
}

/// `[seq, seq]`: -10000 above the diagonal (a later token), 0 on and below it.
fn causal_bias(b: &mut Builder, seq_len: &str) -> Result<String> {
    let square = b.op(
        "Concat",
        &[seq_len, seq_len],
        vec![Attribute::new("axis", 0i64)?],
    )?;
    let minus = b.scalar32(-10000.0)?;
    let full = b.op("Expand", &[&minus, &square], vec![])?;
    let one = b.initializer("one", &[], &[1i64])?;
    b.op(
        "Trilu",
        &[&full, &one],
        vec![Attribute::new("upper", 1i64)?],
    )
}

/// `[seq, seq]`: 0 where |i - j| <= `window`, -10000 farther; from a table of positions cut to
/// the sequence (no Range, as for the position tables).
fn window_band(b: &mut Builder, window: usize, positions: usize, seq_len: &str) -> Result<String> {
    let indices: Vec<f32> = (0..positions).map(|p| p as f32).collect();
    let table = b.initializer("positions", &[positions], &indices)?;
    let here = b.first_rows(&table, seq_len)?; // [seq]
    let (column, row) = (b.ints("axes", &[1])?, b.ints("axes", &[0])?);
    let i = b.op("Unsqueeze", &[&here, &column], vec![])?; // [seq, 1]
    let j = b.op("Unsqueeze", &[&here, &row], vec![])?; // [1, seq]
    let difference = b.op("Sub", &[&i, &j], vec![])?;
    let distance = b.op("Abs", &[&difference], vec![])?;
    let limit = b.scalar32(window as f32)?;
    let far = b.op("Greater", &[&distance, &limit], vec![])?;
    let far = b.cast(&far, FLOAT)?;
    let minus = b.scalar32(-10000.0)?;
    b.op("Mul", &[&far, &minus], vec![])
}
