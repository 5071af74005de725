//! Generated protobuf types of `proto/zicht/v1`; nothing else. Domain code converts at the edge.

#![allow(missing_docs, clippy::all)]

/// `zicht.v1`: domain records, query requests and protected results.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/zicht.v1.rs"));
}
