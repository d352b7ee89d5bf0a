fn main() {
    napi_build::setup();
    println!("cargo::rustc-check-cfg=cfg(mlx)");
    let apple_silicon = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("macos")
        && std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("aarch64");
    if apple_silicon || std::env::var_os("CARGO_FEATURE_MLX").is_some() {
        println!("cargo::rustc-cfg=mlx");
    }
    // The Linux test build links the mlx-cpu wheel's libmlx.so: find it without LD_LIBRARY_PATH.
    println!("cargo::rerun-if-env-changed=SEMANTIC_SEARCH_MLX_PREFIX");
    if let Some(prefix) = std::env::var_os("SEMANTIC_SEARCH_MLX_PREFIX") {
        let lib = std::path::Path::new(&prefix).join("lib");
        println!("cargo::rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
    source_stamp();
}

/// A hash of the Rust sources, for the graph cache's key: an entry is the graph this build makes,
/// and another build of the same version may make another (during development, or a patched
/// copy). FNV-1a over each file's path and bytes, in path order.
fn source_stamp() {
    println!("cargo::rerun-if-changed=native");
    println!("cargo::rerun-if-changed=build.rs");
    let mut files = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from("native")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("native/ is readable") {
            let path = entry.expect("native/ is readable").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for file in files {
        let bytes = std::fs::read(&file).expect("a source file is readable");
        for byte in file.to_string_lossy().bytes().chain(bytes) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    println!("cargo::rustc-env=SEMANTIC_SEARCH_SOURCE={hash:016x}");
}
