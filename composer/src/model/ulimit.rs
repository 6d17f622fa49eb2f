//! `ulimits`: one number for both limits, or soft and hard apart.

use serde::{Deserialize, Serialize};

use super::{Extensions, x_keys};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Ulimit {
    /// Soft and hard limit are the same.
    Single(i64),
    Range(UlimitRange),
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UlimitRange {
    pub soft: i64,
    pub hard: i64,
    #[serde(flatten, deserialize_with = "x_keys")]
    pub extensions: Extensions,
}

impl Ulimit {
    pub fn soft(&self) -> i64 {
        match self {
            Ulimit::Single(n) => *n,
            Ulimit::Range(r) => r.soft,
        }
    }

    pub fn hard(&self) -> i64 {
        match self {
            Ulimit::Single(n) => *n,
            Ulimit::Range(r) => r.hard,
        }
    }
}
