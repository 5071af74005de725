//! End-to-end tests of the `zicht` binary live in `cli.rs`; this library is empty.
