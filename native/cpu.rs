//! What the CPU offers this process.

/// Physical cores available to this process: ONNX Runtime's kernels gain nothing from a
/// hyper-thread sibling, and a thread per logical core oversubscribes.
pub fn physical_cores() -> usize {
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mut cores = std::collections::HashSet::new();
    let mut physical = "";
    for line in cpuinfo.lines() {
        let mut parts = line.splitn(2, ':').map(str::trim);
        match (parts.next(), parts.next()) {
            (Some("physical id"), Some(v)) => physical = v,
            (Some("core id"), Some(v)) => {
                cores.insert((physical.to_string(), v.to_string()));
            }
            _ => {}
        }
    }
    if cores.is_empty() {
        logical
    } else {
        cores.len().min(logical)
    }
}

/// The instruction-set features ONNX Runtime's kernels choose between, as one string: an
/// optimised graph may depend on them, so it is cached per feature set.
pub fn features() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let known = [
            ("avx2", std::is_x86_feature_detected!("avx2")),
            ("fma", std::is_x86_feature_detected!("fma")),
            ("avx512f", std::is_x86_feature_detected!("avx512f")),
            ("avx512bw", std::is_x86_feature_detected!("avx512bw")),
            ("avx512vnni", std::is_x86_feature_detected!("avx512vnni")),
            ("avxvnni", std::is_x86_feature_detected!("avxvnni")),
            ("avx512bf16", std::is_x86_feature_detected!("avx512bf16")),
        ];
        let on: Vec<&str> = known.iter().filter(|k| k.1).map(|k| k.0).collect();
        format!("x86_64:{}", on.join(","))
    }
    #[cfg(target_arch = "aarch64")]
    {
        let known = [
            (
                "dotprod",
                std::arch::is_aarch64_feature_detected!("dotprod"),
            ),
            ("i8mm", std::arch::is_aarch64_feature_detected!("i8mm")),
            ("bf16", std::arch::is_aarch64_feature_detected!("bf16")),
            ("fp16", std::arch::is_aarch64_feature_detected!("fp16")),
        ];
        let on: Vec<&str> = known.iter().filter(|k| k.1).map(|k| k.0).collect();
        format!("aarch64:{}", on.join(","))
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        std::env::consts::ARCH.to_string()
    }
}

/// Whether the CPU multiplies u8 x s8 in one instruction without a 16-bit intermediate
/// (AVX512-VNNI, or AVX-VNNI on newer cores).
pub fn has_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512vnni") || std::is_x86_feature_detected!("avxvnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
