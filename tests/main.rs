//! Integration tests: one binary, a module per feature.

mod golden;
mod properties;
mod seeds;
mod support;
