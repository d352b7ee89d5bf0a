//! The sizes an architecture's config gives, checked before anything is allocated from them:
//! a config that lies (a hidden size of 10^9) is refused here.

pub const MAX_HIDDEN: usize = 1 << 16;
pub const MAX_POSITIONS: usize = 1 << 21;

#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub inner: usize,
    pub vocab: usize,
    pub positions: usize,
    /// Rotary positions, which need an even head size.
    pub rotary: bool,
    /// Heads × head size need not equal the hidden size (the projections' shapes come from
    /// heads × head size, as in the Qwen family).
    pub free_head_dim: bool,
}

impl Sizes {
    /// Within what any real model has, or what is wrong (the error names the value).
    pub fn check(&self) -> Result<(), String> {
        let (hidden, heads, kv_heads, head_dim) =
            (self.hidden, self.heads, self.kv_heads, self.head_dim);
        within("the hidden size", hidden, MAX_HIDDEN)?;
        within("the number of layers", self.layers, 1024)?;
        within("the number of attention heads", heads, hidden)?;
        within("the number of key/value heads", kv_heads, heads)?;
        within("the head size", head_dim, 4096)?;
        within("the FFN size", self.inner, 16 * MAX_HIDDEN)?;
        within("the vocabulary size", self.vocab, 1 << 24)?;
        within("the number of positions", self.positions, MAX_POSITIONS)?;
        if heads % kv_heads != 0 {
            return Err(format!(
                "has {heads} attention heads, not a multiple of its {kv_heads} key/value heads"
            ));
        }
        if (heads * head_dim != hidden && !self.free_head_dim) || (self.rotary && head_dim % 2 == 1)
        {
            return Err(format!(
                "has {heads} heads of size {head_dim}, which do not fit its hidden size {hidden}"
            ));
        }
        Ok(())
    }
}

/// `value` of `what` is from 1 to `max`.
pub fn within(what: &str, value: usize, max: usize) -> Result<(), String> {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(format!("gives {what} as {value}, outside 1..={max}: not a model this addon can load (is config.json damaged?)"))
    }
}
