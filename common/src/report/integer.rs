//! Integers as JSON Schema counts them: `3`, `3.0` and `3e2` are all integers, `3.5` is not. A
//! generic JSON writer may print a whole number as a float; it decodes to the same count.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Unexpected, Visitor};

/// A whole JSON number that fits in an `i64`.
struct Whole(i64);

impl<'de> Deserialize<'de> for Whole {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_i64(WholeVisitor)
    }
}

struct WholeVisitor;

impl Visitor<'_> for WholeVisitor {
    type Value = Whole;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Whole, E> {
        Ok(Whole(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Whole, E> {
        i64::try_from(value)
            .map(Whole)
            .map_err(|_| E::invalid_value(Unexpected::Unsigned(value), &"an integer below 2^63"))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Whole, E> {
        // -2^63 is i64::MIN exactly; 2^63 itself is already out of range.
        const TWO_TO_THE_63: f64 = 9_223_372_036_854_775_808_u64 as f64;
        let in_range = (-TWO_TO_THE_63..TWO_TO_THE_63).contains(&value);
        if value.fract() == 0.0 && in_range {
            Ok(Whole(value as i64))
        } else {
            Err(E::invalid_type(Unexpected::Float(value), &self))
        }
    }
}

/// An integer field.
pub fn exact<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    Whole::deserialize(deserializer).map(|whole| whole.0)
}

/// An optional integer field (`null` or absent: `None`).
pub fn optional<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    Option::<Whole>::deserialize(deserializer).map(|whole| whole.map(|whole| whole.0))
}

/// A list of integers.
pub fn list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<i64>, D::Error> {
    Vec::<Whole>::deserialize(deserializer)
        .map(|wholes| wholes.into_iter().map(|whole| whole.0).collect())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Counts {
        #[serde(deserialize_with = "super::exact")]
        total: i64,
        #[serde(default, deserialize_with = "super::optional")]
        namespaces: Option<i64>,
        #[serde(deserialize_with = "super::list")]
        buckets: Vec<i64>,
    }

    fn decode(json: &str) -> Result<Counts, String> {
        serde_json::from_str(json).map_err(|error| error.to_string())
    }

    #[test]
    fn whole_numbers_in_any_notation_are_integers() {
        let counts =
            decode(r#"{"total": 9680142972.0, "namespaces": 3e2, "buckets": [0, 1.0, -2]}"#)
                .unwrap();
        assert_eq!(counts.total, 9_680_142_972);
        assert_eq!(counts.namespaces, Some(300));
        assert_eq!(counts.buckets, [0, 1, -2]);
        let counts =
            decode(r#"{"total": -9223372036854775808, "namespaces": null, "buckets": []}"#)
                .unwrap();
        assert_eq!(counts.total, i64::MIN);
        assert_eq!(counts.namespaces, None);
    }

    #[test]
    fn fractions_other_types_and_numbers_past_i64_are_refused() {
        for (json, expected) in [
            (
                r#"{"total": 1.5, "buckets": []}"#,
                "invalid type: floating point `1.5`, expected an integer",
            ),
            (
                r#"{"total": "1", "buckets": []}"#,
                "invalid type: string \"1\", expected an integer",
            ),
            (
                r#"{"total": 9223372036854775808, "buckets": []}"#,
                "expected an integer below 2^63",
            ),
            (r#"{"total": 1e19, "buckets": []}"#, "expected an integer"),
            (r#"{"total": 1, "buckets": [0.5]}"#, "expected an integer"),
        ] {
            let error = decode(json).unwrap_err();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }
}
