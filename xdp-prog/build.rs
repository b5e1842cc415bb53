//! Compiles the BPF programs in src/bpf/ with clang and writes their libbpf skeletons to OUT_DIR:
//! the XDP steering program (steer.bpf.c) and the tc egress fault injector (loss.bpf.c).

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// (source, skeleton file, extra clang args).
const PROGS: [(&str, &str, &[&str]); 2] = [
    ("src/bpf/steer.bpf.c", "steer.skel.rs", &[]),
    // v3 for the atomic fetch-and-add of the deterministic every-Nth mode (clang 14 defaults
    // to v1, which cannot use the value an atomic add returns).
    ("src/bpf/loss.bpf.c", "loss.skel.rs", &["-mcpu=v3"]),
];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    // Debian keeps asm/types.h under the multiarch include directory.
    let multiarch = format!("-I/usr/include/{arch}-linux-gnu");
    for (src, skel, extra) in PROGS {
        let mut args = vec!["-Wall", "-Werror", multiarch.as_str()];
        args.extend_from_slice(extra);
        SkeletonBuilder::new()
            .source(src)
            .clang_args(args)
            .build_and_generate(out.join(skel))
            .unwrap_or_else(|e| {
                panic!("failed to build {src} (needs clang and libbpf-dev; see README): {e}")
            });
        println!("cargo:rerun-if-changed={src}");
    }
    println!("cargo:rerun-if-changed=src/bpf/syncookie.h");
    println!("cargo:rerun-if-changed=src/bpf/steer6.h");
    println!("cargo:rerun-if-changed=src/bpf/icmp.h");
}
