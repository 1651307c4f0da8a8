//! Compiles the KDS, zone-proxy and MADS protos with protox (pure Rust, no system `protoc`), mapping Envoy's and
//! Google's types onto envoy-types so KDS messages nest inside Envoy's discovery messages.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fds = protox::compile(
        [
            "kuma/mesh/v1alpha1/kds.proto",
            "atoll/zoneproxy/v1/table.proto",
            "kuma/observability/v1/mads.proto",
        ],
        ["proto"],
    )?;
    tonic_prost_build::configure()
        .compile_well_known_types(true)
        // Small per-stream buffers (src/codec.rs): KDS and table streams live for hours.
        .codec_path("crate::codec::SmallBuffers")
        .extern_path(".google.protobuf", "::envoy_types::pb::google::protobuf")
        .extern_path(".envoy", "::envoy_types::pb::envoy")
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
