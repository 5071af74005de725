//! Queries on a node's own data: admission (limits, shape, quotas), execution under disclosure
//! control (the one path from data to anything that leaves), and merging regions' answers.

pub(crate) mod admission;
pub(crate) mod consented;
pub(crate) mod execute;
pub(crate) mod merge;
