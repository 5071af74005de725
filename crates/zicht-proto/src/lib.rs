//! Generated protobuf and gRPC types of `proto/zicht/v1`; nothing else. Domain code converts
//! at the edge.

#![allow(missing_docs, clippy::all)]

/// `zicht.v1`: domain records, query requests, protected results, and the Inway/Outway services.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/zicht.v1.rs"));
}

/// The encoded `FileDescriptorSet` of `zicht.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/zicht_descriptor.bin"));
