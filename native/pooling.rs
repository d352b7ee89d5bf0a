//! Pooling of token states into one vector per text, and L2 normalisation: written once,
//! shared by every backend whose graph does not pool by itself.

#[napi_derive::napi(string_enum = "lowercase")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    Cls,
    Mean,
    /// The last real token of each row (decoder-style embedders pool their EOS token).
    LastToken,
}

/// Pools `hidden` ([batch, seq, dim], row-major) into `out` ([batch, dim]); `lengths[b]` real tokens
/// lead each row and the rest is padding.
pub fn pool(
    pooling: Pooling,
    hidden: &[f32],
    seq: usize,
    dim: usize,
    lengths: &[usize],
    out: &mut [f32],
) {
    for (b, (&len, row_out)) in lengths.iter().zip(out.chunks_exact_mut(dim)).enumerate() {
        let row = &hidden[b * seq * dim..(b + 1) * seq * dim];
        match pooling {
            Pooling::Cls => row_out.copy_from_slice(&row[..dim]),
            Pooling::Mean => mean_of_tokens(&row[..len * dim], dim, row_out),
            Pooling::LastToken => {
                let last = len.max(1) - 1;
                row_out.copy_from_slice(&row[last * dim..(last + 1) * dim])
            }
        }
    }
}

fn mean_of_tokens(tokens: &[f32], dim: usize, out: &mut [f32]) {
    out.fill(0.0);
    let count = tokens.len() / dim;
    for token in tokens.chunks_exact(dim) {
        out.iter_mut().zip(token).for_each(|(o, t)| *o += t);
    }
    // sentence-transformers clamps the token count at 1e-9; no row here is empty ([CLS] is always in).
    let scale = 1.0 / count.max(1) as f32;
    out.iter_mut().for_each(|o| *o *= scale);
}

/// Scales each `dim`-long row of `vectors` to unit length (a zero row stays zero).
pub fn l2_normalize(vectors: &mut [f32], dim: usize) {
    for row in vectors.chunks_exact_mut(dim) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|x| *x /= norm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_ignores_padding_tokens() {
        // two rows of 3 tokens, dim 2; row 0 has 2 real tokens, row 1 has 1
        let hidden = [
            1.0, 2.0, 3.0, 4.0, 100.0, 100.0, 5.0, 6.0, 100.0, 100.0, 100.0, 100.0,
        ];
        let mut out = [0.0; 4];
        pool(Pooling::Mean, &hidden, 3, 2, &[2, 1], &mut out);
        assert_eq!(out, [2.0, 3.0, 5.0, 6.0]);
    }

    #[test]
    fn cls_takes_the_first_token() {
        let hidden = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let mut out = [0.0; 4];
        pool(Pooling::Cls, &hidden, 2, 2, &[2, 1], &mut out);
        assert_eq!(out, [1.0, 2.0, 5.0, 6.0]);
    }

    #[test]
    fn normalized_rows_have_unit_length() {
        let mut v = [3.0, 4.0, 0.0, 0.0];
        l2_normalize(&mut v, 2);
        assert_eq!(v, [0.6, 0.8, 0.0, 0.0]);
    }
}
