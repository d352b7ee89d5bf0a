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
}
