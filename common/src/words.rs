//! The format's closed vocabularies as words: each such enum names its words (on the wire, in
//! the store, in metrics labels) and parses them back.

use std::str::FromStr;

use strum::VariantArray;

/// An enum every variant of which is one word of a closed vocabulary.
pub trait Words: Copy + PartialEq + VariantArray + Into<&'static str> + FromStr + 'static {
    /// Every word, in declaration order.
    fn words() -> Vec<&'static str> {
        Self::VARIANTS.iter().map(|word| (*word).into()).collect()
    }

    /// True when every word parses back to its own variant, as stores and configurations
    /// rely on.
    fn parse_back() -> bool {
        Self::VARIANTS.iter().all(|variant| {
            let word: &'static str = (*variant).into();
            word.parse::<Self>().is_ok_and(|parsed| parsed == *variant)
        })
    }
}

impl<T> Words for T where T: Copy + PartialEq + VariantArray + Into<&'static str> + FromStr + 'static
{}
