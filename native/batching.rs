//! Length-sorted micro-batches under a token budget: padding costs compute, so texts of similar
//! length run together, and each micro-batch pads only to its own longest text.

/// One forward pass: `rows` are indices into the caller's texts, `input_ids` and
/// `attention_mask` are `[rows.len(), seq]` row-major.
#[derive(Debug)]
pub struct Batch {
    pub rows: Vec<usize>,
    pub seq: usize,
    pub lengths: Vec<usize>,
    pub input_ids: Vec<i64>,
    pub attention_mask: Vec<i64>,
    /// Each token's segment (`[rows.len(), seq]`), for a model that reads them; empty: all 0.
    pub token_types: Vec<i64>,
    /// The value of a model's `task_id` input (the adapter), when it has one.
    pub task: Option<i64>,
}

impl Batch {
    pub fn size(&self) -> usize {
        self.rows.len()
    }
}

/// Groups text indices into micro-batches, longest first, so that rows × padded length stays
/// within `budget_tokens` (a text longer than the budget runs alone).
pub fn plan(lengths: &[usize], budget_tokens: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    let mut batches: Vec<Vec<usize>> = Vec::new();
    for i in order {
        match batches.last_mut() {
            // sorted descending, so the first row of a batch is its longest
            Some(batch) if (batch.len() + 1) * lengths[batch[0]] <= budget_tokens => batch.push(i),
            _ => batches.push(vec![i]),
        }
    }
    batches
}

/// Pads the token ids of `rows` to the longest of them.
pub fn assemble(ids: &[Vec<u32>], rows: Vec<usize>) -> Batch {
    let lengths: Vec<usize> = rows.iter().map(|&r| ids[r].len()).collect();
    let seq = lengths.iter().copied().max().unwrap_or(0);
    let mut input_ids = vec![0i64; rows.len() * seq];
    let mut attention_mask = vec![0i64; rows.len() * seq];
    for (b, &r) in rows.iter().enumerate() {
        let start = b * seq;
        for (t, &id) in ids[r].iter().enumerate() {
            input_ids[start + t] = i64::from(id);
            attention_mask[start + t] = 1;
        }
    }
    Batch {
        rows,
        seq,
        lengths,
        input_ids,
        attention_mask,
        token_types: Vec::new(),
        task: None,
    }
}

/// `assemble`, with each row's token types (`types[r]` as long as `ids[r]`) padded as its ids.
pub fn assemble_typed(ids: &[Vec<u32>], types: &[Vec<u8>], rows: Vec<usize>) -> Batch {
    let mut batch = assemble(ids, rows);
    let mut token_types = vec![0i64; batch.input_ids.len()];
    for (b, &r) in batch.rows.iter().enumerate() {
        let start = b * batch.seq;
        for (t, &kind) in types[r].iter().enumerate() {
            token_types[start + t] = i64::from(kind);
        }
    }
    batch.token_types = token_types;
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_is_in_exactly_one_batch() {
        let lengths = [5, 1, 9, 3, 3, 7, 2];
        let mut seen: Vec<usize> = plan(&lengths, 12).concat();
        seen.sort();
        assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
    }

    #[test]
    fn batches_stay_within_the_budget_and_are_sorted() {
        let lengths = [5, 1, 9, 3, 3, 7, 2, 4, 4, 4];
        let batches = plan(&lengths, 12);
        for batch in &batches {
            let longest = batch.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(batch.len() == 1 || batch.len() * longest <= 12, "{batch:?}");
            assert_eq!(lengths[batch[0]], longest);
        }
        let firsts: Vec<usize> = batches.iter().map(|b| lengths[b[0]]).collect();
        assert!(firsts.windows(2).all(|w| w[0] >= w[1]), "{firsts:?}");
    }

    #[test]
    fn a_text_longer_than_the_budget_runs_alone() {
        assert_eq!(plan(&[50, 2, 2], 10), vec![vec![0], vec![1, 2]]);
    }

    #[test]
    fn assemble_pads_to_the_longest_row() {
        let ids = vec![vec![1, 2, 3], vec![4]];
        let batch = assemble(&ids, vec![1, 0]);
        assert_eq!(batch.seq, 3);
        assert_eq!(batch.input_ids, [4, 0, 0, 1, 2, 3]);
        assert_eq!(batch.attention_mask, [1, 0, 0, 1, 1, 1]);
        assert_eq!(batch.lengths, [1, 3]);
    }
}
