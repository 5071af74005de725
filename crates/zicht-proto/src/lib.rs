//! The protobuf and gRPC types of `proto/zicht/v1`, generated, and beside them their one
//! conversion to and from the domain types of `zicht-model` ([`domain`]).

pub mod domain;

/// `zicht.v1`: domain records, query requests, protected results, and the Inway/Outway services.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/zicht.v1.rs"));
}

/// The encoded `FileDescriptorSet` of `zicht.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/zicht_descriptor.bin"));
