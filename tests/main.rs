//! Integration tests: one binary, a module per feature.

mod build;
mod check;
mod daemon;
mod digest;
mod golden;
mod properties;
mod reconcile;
mod reliability;
mod seeds;
mod store;
mod support;
mod update;
