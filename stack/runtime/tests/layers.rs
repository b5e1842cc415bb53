//! The layering rules of the workspace, checked on every `cargo test` (no root, no network):
//!
//! - the runtime's modules (`stack/runtime/src`) import only modules of a lower rank:
//!   core re-exports < clock, cookies < phy < neigh < app < handoff < iface < worker < stack < control, launch
//!   < cli (the binary sits above all);
//! - the bench library's modules (`bench/src`) likewise, with the bench's own table;
//! - `xdptcp-core` forbids unsafe code, depends on nothing that does I/O or touches the OS,
//!   and its code names no file, socket, clock, thread or process API (known exceptions are
//!   listed in `CORE_EXCEPTIONS`);
//! - `cli/` parses and prints: no sockets, threads or signals of its own.
//!
//! The scanner reads each source file line by line and collects the first segment of every
//! `crate::` path (and of `super::` paths that climb to the crate root) outside comments. It
//! stops at the file's `#[cfg(test)] mod tests { .. }` (tests may use any module) and skips
//! files declared as `#[cfg(test)] mod x;`. Any other `#[cfg(test)]` item is refused, so the
//! scanner never has to guess where one ends.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The runtime's modules, bottom to top: a module may import a module of a lower tier only.
const RUNTIME: &[&[&str]] = &[
    &["tcp", "wire", "wheel", "rss", "time", "hash"], // xdptcp-core, re-exported
    &["clock", "cookies"],
    &["phy"],
    &["neigh"],
    &["app"],
    &["handoff"],
    &["iface"],
    &["worker"],
    &["stack"],
    &["control", "launch"],
    &["cli"],
];

/// The bench library's modules, bottom to top.
const BENCH: &[&[&str]] = &[
    &["error"],
    &["sys", "kinds", "nic", "memory", "wrk", "redis_bench"],
    &["client", "netns", "memattack"],
    &[
        "linux_server",
        "ceiling",
        "stack_client",
        "flood",
        "flood_client",
    ],
    &["report"],
    &["plot", "pktrate", "pairing"],
    &["scenario", "app_server"],
    &["http", "synflood"],
    &["app"],
];

/// Crates that do I/O or touch the OS: none may be a normal dependency of xdptcp-core.
const NOT_IN_CORE: &[&str] = &[
    "xsk-rs",
    "libbpf-rs",
    "libbpf-sys",
    "libbpf-cargo",
    "clap",
    "netlink-packet-route",
    "netlink-packet-core",
    "netlink-sys",
    "core_affinity",
    "libc",
    "crossbeam",
    "xdptcp",
    "xdptcp-xdp",
    "anyhow",
    "getrandom",
];

fn repo() -> PathBuf {
    fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")).unwrap()
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file below `src`: `app/http.rs` -> [app, http], `app/mod.rs` -> [app].
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut v: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = v.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    let root = v.is_empty() && (stem == "lib" || stem == "main");
    if stem != "mod" && !root {
        v.push(stem.to_string());
    }
    v
}

/// The first identifier of `s`.
fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The crate-level modules a file uses outside its tests, with the line of each use; and the
/// file names it declares as test-only (`#[cfg(test)] mod x;`).
#[derive(Default)]
struct Scan {
    uses: Vec<(String, usize)>,
    test_children: Vec<String>,
}

fn scan(text: &str, module: &[String], what: &str) -> Scan {
    let mut out = Scan::default();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    // Inside a multi-line `crate::{ .. }` group: the brace depth.
    let mut group: Option<usize> = None;
    while i < lines.len() {
        let raw = lines[i];
        let line = raw.trim();
        let lineno = i + 1;
        i += 1;
        if line.starts_with("//") {
            continue;
        }
        if line.starts_with("#[cfg(test)]") {
            let next = lines[i..]
                .iter()
                .map(|l| l.trim())
                .find(|l| !l.is_empty())
                .unwrap_or("");
            let item = next.strip_prefix("pub ").unwrap_or(next);
            if let Some(rest) = item.strip_prefix("mod ") {
                let name = ident(rest).to_string();
                if rest[name.len()..].trim_start().starts_with(';') {
                    out.test_children.push(name);
                    continue;
                }
                // `mod tests {`: the rest of the file is test code.
                break;
            }
            panic!(
                "{what}:{lineno}: #[cfg(test)] on something other than a module ({next:?}): \
                 move it into the tests module so the layer check can skip it"
            );
        }
        // Drop a trailing comment (" // ..."), keep the code.
        let code = match line.find(" // ") {
            Some(k) => &line[..k],
            None => line,
        };
        let mut names: Vec<String> = Vec::new();
        if let Some(depth) = group {
            // Continuation of `crate::{`: names at depth 1 start after `{` or `,`.
            let mut d = depth;
            let mut start = true;
            for (k, c) in code.char_indices() {
                match c {
                    '{' => d += 1,
                    '}' => d -= 1,
                    ',' if d == 1 => start = true,
                    c if c.is_whitespace() => {}
                    _ if start && d == 1 => {
                        names.push(ident(&code[k..]).to_string());
                        start = false;
                    }
                    _ => {}
                }
                if d == 0 {
                    break;
                }
            }
            group = (d > 0).then_some(d);
        }
        let mut rest = code;
        while let Some(k) = rest.find("crate::") {
            let before = rest[..k].chars().last();
            let after = &rest[k + "crate::".len()..];
            rest = after;
            if matches!(before, Some(c) if c == '$' || c.is_ascii_alphanumeric() || c == '_') {
                continue; // `$crate::`, `xdptcp_crate::`..
            }
            if let Some(inner) = after.strip_prefix('{') {
                // `crate::{a, b::c}`: the first segment of each item.
                let mut d = 1usize;
                let mut start = true;
                for (k, c) in inner.char_indices() {
                    match c {
                        '{' => d += 1,
                        '}' => d -= 1,
                        ',' if d == 1 => start = true,
                        c if c.is_whitespace() => {}
                        _ if start && d == 1 => {
                            names.push(ident(&inner[k..]).to_string());
                            start = false;
                        }
                        _ => {}
                    }
                    if d == 0 {
                        break;
                    }
                }
                if d > 0 {
                    group = Some(d);
                }
            } else {
                names.push(ident(after).to_string());
            }
        }
        // `super::` paths that climb out of the file's top module name a sibling module.
        let mut rest = code;
        while let Some(k) = rest.find("super::") {
            let before = rest[..k].chars().last();
            rest = &rest[k..];
            if matches!(before, Some(c) if c == ':' || c.is_ascii_alphanumeric() || c == '_') {
                rest = &rest["super::".len()..];
                continue;
            }
            let mut ups = 0;
            while let Some(r) = rest.strip_prefix("super::") {
                ups += 1;
                rest = r;
            }
            if ups >= module.len() {
                names.push(ident(rest).to_string());
            }
        }
        for n in names {
            if !n.is_empty() && n != "self" {
                out.uses.push((n, lineno));
            }
        }
    }
    out
}

fn tier_of(table: &[&[&str]], name: &str) -> Option<usize> {
    table.iter().position(|t| t.contains(&name))
}

/// Checks every module of the library rooted at `src/lib.rs` against `table`; returns the
/// violations, one line each.
fn check_layers(src: &Path, table: &[&[&str]]) -> Vec<String> {
    let mut files = Vec::new();
    rs_files(src, &mut files);
    let mut test_only: BTreeSet<PathBuf> = BTreeSet::new();
    let mut scans: BTreeMap<PathBuf, Scan> = BTreeMap::new();
    let mut bad = Vec::new();
    for f in &files {
        let module = module_path(src, f);
        let what = f.strip_prefix(repo()).unwrap_or(f).display().to_string();
        let s = scan(&fs::read_to_string(f).unwrap(), &module, &what);
        let file = f.file_name().unwrap();
        let dir = if file == "mod.rs" || file == "lib.rs" || file == "main.rs" {
            f.parent().unwrap().to_path_buf()
        } else {
            f.with_extension("")
        };
        for c in &s.test_children {
            test_only.insert(dir.join(format!("{c}.rs")));
            test_only.insert(dir.join(c));
        }
        scans.insert(f.clone(), s);
    }
    // The modules lib.rs declares are exactly the table's (the core re-exports aside).
    let lib = fs::read_to_string(src.join("lib.rs")).unwrap();
    let mut declared: BTreeSet<&str> = BTreeSet::new();
    let mut after_cfg_test = false;
    for l in lib.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let item = l.strip_prefix("pub ").unwrap_or(l);
        if let (Some(m), false) = (item.strip_prefix("mod "), after_cfg_test) {
            declared.insert(ident(m));
        }
        after_cfg_test = l.starts_with("#[cfg(test)]");
    }
    for m in &declared {
        if tier_of(table, m).is_none() {
            bad.push(format!(
                "{}: module `{m}` has no rank: add it to the table in tests/layers.rs",
                src.display()
            ));
        }
    }
    for (f, s) in &scans {
        let module = module_path(src, f);
        let Some(top) = module.first() else {
            continue; // lib.rs: the root sits above every module
        };
        if top == "bin" {
            continue; // binaries sit above the library
        }
        if test_only.iter().any(|t| f.starts_with(t)) {
            continue;
        }
        let what = f.strip_prefix(repo()).unwrap_or(f).display();
        let Some(own) = tier_of(table, top) else {
            bad.push(format!("{what}: module `{top}` has no rank in the table"));
            continue;
        };
        for (name, line) in &s.uses {
            if name == top {
                continue;
            }
            match tier_of(table, name) {
                Some(t) if t < own => {}
                Some(_) => bad.push(format!(
                    "{what}:{line}: `{top}` imports `{name}`, which is not below it"
                )),
                None => bad.push(format!(
                    "{what}:{line}: `{top}` uses `crate::{name}`, which is not a ranked module \
                     (items of the crate root sit above every module)"
                )),
            }
        }
    }
    bad
}

#[test]
fn runtime_modules_import_only_lower_layers() {
    let bad = check_layers(&repo().join("stack/runtime/src"), RUNTIME);
    assert!(bad.is_empty(), "layer violations:\n{}", bad.join("\n"));
}

#[test]
fn bench_modules_import_only_lower_layers() {
    let bad = check_layers(&repo().join("bench/src"), BENCH);
    assert!(bad.is_empty(), "layer violations:\n{}", bad.join("\n"));
}

#[test]
fn cli_neither_builds_nor_serves() {
    // The command line parses and prints: no sockets, threads or signals of its own.
    let mut files = Vec::new();
    rs_files(&repo().join("stack/runtime/src/cli"), &mut files);
    for f in files {
        let text = fs::read_to_string(&f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for word in [
            "UnixListener",
            "UnixStream",
            "TcpStream",
            "std::thread::spawn",
            "libc::",
            "unsafe",
            "AfXdpDevice::open",
            "Worker::new",
        ] {
            assert!(
                !code.contains(word),
                "{}: `{word}` in cli/: move it to the runtime module it belongs to",
                f.display()
            );
        }
    }
}

#[test]
fn the_scanner_sees_what_it_must() {
    let m = vec!["phy".to_string(), "fault".to_string()];
    let s = scan(
        "//! crate::cli in a comment\nuse crate::time::Instant;\nuse crate::{iface::X, \
         app};\nlet n = crate::clock::now(); // crate::stack\nuse super::super::worker::W;\n\
         use crate::{\n    neigh::Mac,\n    handoff::{A, B},\n};\n#[cfg(test)]\nmod t;\n\
         use crate::stack::S;\n#[cfg(test)]\nmod tests {\n use crate::cli::X;\n}\n",
        &m,
        "example",
    );
    let names: Vec<&str> = s.uses.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["time", "iface", "app", "clock", "worker", "neigh", "handoff", "stack"]
    );
    assert_eq!(s.test_children, ["t"]);
}

fn core_manifest_section(name: &str) -> Vec<String> {
    let toml = fs::read_to_string(repo().join("stack/core/Cargo.toml")).unwrap();
    let mut in_section = false;
    let mut deps = Vec::new();
    for line in toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == format!("[{name}]");
            continue;
        }
        if in_section && !line.is_empty() && !line.starts_with('#') {
            let key = line.split(['=', '.']).next().unwrap().trim();
            deps.push(key.trim_matches('"').to_string());
        }
    }
    deps
}

#[test]
fn core_forbids_unsafe_code() {
    let lib = fs::read_to_string(repo().join("stack/core/src/lib.rs")).unwrap();
    assert!(
        lib.lines().any(|l| l.trim() == "#![forbid(unsafe_code)]"),
        "stack/core/src/lib.rs must keep #![forbid(unsafe_code)]"
    );
}

#[test]
fn core_depends_on_nothing_that_does_io() {
    let deps = core_manifest_section("dependencies");
    assert!(
        !deps.is_empty(),
        "no [dependencies] read from stack/core/Cargo.toml"
    );
    for d in &deps {
        assert!(
            !NOT_IN_CORE.contains(&d.as_str()),
            "xdptcp-core depends on {d}: I/O and OS crates belong to the runtime"
        );
    }
    assert!(
        core_manifest_section("build-dependencies").is_empty(),
        "xdptcp-core has a build script dependency"
    );
    // The whole normal dependency tree, as Cargo resolves it for xdptcp-core alone.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "tree",
            "-p",
            "xdptcp-core",
            "-e",
            "normal",
            "--offline",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(repo())
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -p xdptcp-core: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: BTreeSet<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.contains("xdptcp-core"), "{tree}");
    for n in &names {
        assert!(
            !NOT_IN_CORE.contains(n),
            "xdptcp-core pulls in {n} (cargo tree -p xdptcp-core -e normal):\n{tree}"
        );
    }
}

/// What the core must not touch: the OS, the clock, threads. (`unsafe` is the compiler's job:
/// `forbid(unsafe_code)`.)
const NOT_IN_CORE_CODE: &[&str] = &[
    "std::fs",
    "std::io",
    "std::net::TcpStream",
    "std::net::TcpListener",
    "std::net::UdpSocket",
    "std::time",
    "SystemTime",
    "std::thread",
    "std::process",
    "std::env",
    "std::os",
    "thread_local!",
];

/// Known exceptions: (file below stack/core/src, token). None today: the buffer pool and the
/// shared `Limits` are values owned by the endpoint.
const CORE_EXCEPTIONS: &[(&str, &str)] = &[];

#[test]
fn core_code_does_no_io_and_reads_no_clock() {
    let src = repo().join("stack/core/src");
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    let mut bad = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        // Test-only files: `tests.rs`, `*_tests.rs`, anything under a `tests/` folder.
        if name == "tests.rs" || name.ends_with("_tests.rs") || rel.contains("tests/") {
            continue;
        }
        let text = fs::read_to_string(&f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.starts_with("#[cfg(test)]") {
                let rest: Vec<&str> = text.lines().skip(n + 1).take(2).collect();
                // `mod tests { .. }` runs to the end of the file; `mod tests;` is a file of
                // its own (skipped above).
                if rest
                    .iter()
                    .any(|r| r.trim_start().starts_with("mod tests") && r.trim_end().ends_with('{'))
                {
                    break;
                }
            }
            if l.starts_with("//") {
                continue;
            }
            for t in NOT_IN_CORE_CODE {
                if l.contains(t) && !CORE_EXCEPTIONS.contains(&(rel.as_str(), *t)) {
                    bad.push(format!("stack/core/src/{rel}:{}: {t}", n + 1));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "the core touches the OS, the clock or threads:\n{}",
        bad.join("\n")
    );
}

#[test]
fn libraries_use_typed_errors() {
    // anyhow and `Result<_, String>` only at a program's edge (`main.rs`, `bin/`).
    let mut bad = Vec::new();
    for dir in [
        "stack/runtime/src",
        "stack/sim/src",
        "stack/harness/src",
        "xdp-prog/src",
        "bench/src",
    ] {
        let mut files = Vec::new();
        rs_files(&repo().join(dir), &mut files);
        for f in files {
            let rel = f.strip_prefix(repo()).unwrap().display().to_string();
            if rel.ends_with("/main.rs") || rel.contains("/bin/") {
                continue;
            }
            let text = fs::read_to_string(&f).unwrap();
            for (n, line) in text.lines().enumerate() {
                let l = line.trim();
                if l.starts_with("#[cfg(test)]") {
                    let next = text.lines().nth(n + 1).unwrap_or("").trim();
                    if next.starts_with("mod tests") && next.ends_with('{') {
                        break;
                    }
                }
                if l.starts_with("//") {
                    continue;
                }
                let string_err = l
                    .find("Result<")
                    .is_some_and(|k| l[k..].contains(", String>"));
                if l.contains("anyhow") || string_err {
                    bad.push(format!("{rel}:{}: {l}", n + 1));
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "untyped errors in library code (use a thiserror type):\n{}",
        bad.join("\n")
    );
}
