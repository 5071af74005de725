//! End-to-end tests of zicht as its users run it. The tests are the `[[test]]` targets of this
//! crate (`demo.rs`, and the multi-node federation tests as the node is built); this library is
//! empty.
