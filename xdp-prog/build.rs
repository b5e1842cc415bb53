//! Compiles src/bpf/steer.bpf.c with clang and writes its libbpf skeleton to OUT_DIR.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

const SRC: &str = "src/bpf/steer.bpf.c";

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    // Debian keeps asm/types.h under the multiarch include directory.
    let multiarch = format!("-I/usr/include/{arch}-linux-gnu");
    SkeletonBuilder::new()
        .source(SRC)
        .clang_args(["-Wall", "-Werror", multiarch.as_str()])
        .build_and_generate(out.join("steer.skel.rs"))
        .expect("failed to build the XDP program (needs clang and libbpf-dev; see README)");
    println!("cargo:rerun-if-changed={SRC}");
}
