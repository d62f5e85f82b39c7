//! Fixed buckets for counts (nodes, namespaces, objects): bounds and their labels.

/// Fixed buckets: upper bounds (inclusive) and the label of each bucket, the last one open.
pub struct Buckets {
    bounds: &'static [u64],
    /// The label of each bucket, in order.
    pub labels: Vec<String>,
}

impl Buckets {
    pub fn new(bounds: &'static [u64]) -> Self {
        Buckets {
            bounds,
            labels: (0..=bounds.len())
                .map(|i| bucket_label(bounds, i))
                .collect(),
        }
    }

    /// The label of the bucket `n` falls in.
    pub fn label(&self, n: u64) -> &str {
        &self.labels[self.bounds.partition_point(|bound| *bound < n)]
    }
}

/// The label of bucket `index` of `bounds`: `0`, `2-5`, ..., and `2001+` past the last bound.
fn bucket_label(bounds: &[u64], index: usize) -> String {
    let low = match index {
        0 => 0,
        i => bounds[i - 1] + 1,
    };
    match bounds.get(index) {
        None => format!("{low}+"),
        Some(high) if *high == low => low.to_string(),
        Some(high) => format!("{low}-{high}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_labelled_by_their_bounds() {
        let sizes = Buckets::new(&[0, 1, 5, 20, 100, 500, 2000]);
        assert_eq!(
            sizes.labels,
            [
                "0", "1", "2-5", "6-20", "21-100", "101-500", "501-2000", "2001+"
            ]
        );
        for (n, label) in [
            (0, "0"),
            (1, "1"),
            (5, "2-5"),
            (6, "6-20"),
            (2000, "501-2000"),
            (2001, "2001+"),
        ] {
            assert_eq!(sizes.label(n), label, "{n}");
        }
    }
}
