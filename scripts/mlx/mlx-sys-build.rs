// Replaces mlx-sys 0.7.0's build.rs for the Linux test build (copied in by scripts/mlx-linux;
// never committed with the crate): builds the crate's own mlx-c against the system MLX that
// PyPI's `mlx-cpu` wheel ships, instead of fetching MLX from GitHub and linking Apple frameworks.
use std::env;
use std::path::{Path, PathBuf};

#[allow(dead_code)]
#[path = "src/bindgen_config.rs"]
mod bindgen_config;

fn main() {
    let prefix = PathBuf::from(
        env::var("SEMANTIC_SEARCH_MLX_PREFIX")
            .expect("SEMANTIC_SEARCH_MLX_PREFIX must name the mlx-cpu install (scripts/mlx-linux sets it)"),
    );
    println!("cargo:rerun-if-env-changed=SEMANTIC_SEARCH_MLX_PREFIX");
    let mlx_c = Path::new("src/mlx-c");
    build_mlx_c(mlx_c, &prefix);
    write_bindings(mlx_c);
}

fn build_mlx_c(mlx_c: &Path, prefix: &Path) {
    let dst = cmake::Config::new(mlx_c)
        .define("MLX_C_USE_SYSTEM_MLX", "ON")
        .define("MLX_DIR", prefix.join("share/cmake/MLX"))
        .define("MLX_C_BUILD_EXAMPLES", "OFF")
        .define("CMAKE_BUILD_TYPE", "Release")
        .build();
    // mlx-rs reads the time for a default random seed through this Darwin call.
    cc::Build::new()
        .file("mach_time_shim.c")
        .compile("mach_time_shim");
    println!("cargo:rustc-link-search=native={}/lib", dst.display());
    println!("cargo:rustc-link-search=native={}/lib", prefix.display());
    println!("cargo:rustc-link-lib=static=mlxc");
    println!("cargo:rustc-link-lib=dylib=mlx");
    println!("cargo:rustc-link-lib=dylib=stdc++");
    println!("cargo::metadata=libdir={}/lib", prefix.display());
}

fn write_bindings(mlx_c: &Path) {
    let headers = bindgen_config::discover_headers(mlx_c).expect("mlx-c headers");
    let bindings = bindgen_config::builder(mlx_c, &headers)
        .generate()
        .expect("bindgen over mlx-c's headers");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs");
}
