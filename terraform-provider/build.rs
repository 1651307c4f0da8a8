//! Compiles Terraform's plugin protocol (tfplugin6.5, as HashiCorp publishes it) with protox:
//! no system `protoc`, the workspace's one tonic/prost line.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fds = protox::compile(["tfplugin6.5.proto", "grpc_controller.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(false)
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
