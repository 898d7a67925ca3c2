//! Compiles `proto/ikt/v1/key_transport.proto` with protox (pure Rust), so no system `protoc`
//! is needed, and generates prost messages and tonic services from the descriptor set.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let file = root.join("ikt/v1/key_transport.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let fds = protox::compile([&file], [&root])?;
    tonic_prost_build::configure()
        // KeyBundle carries CK/IK: its Debug is written by hand (redacting) in lib.rs.
        .skip_debug([".ikt.v1.KeyBundle"])
        .compile_fds(fds)?;
    Ok(())
}
