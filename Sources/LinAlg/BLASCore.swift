// Which OpenBLAS kernel family this process runs, and a warning when OpenBLAS's CPU detection
// fell back to its generic kernels on a CPU that has AVX2/AVX-512 (Debian's OpenBLAS 0.3.21
// does not recognise some recent Xeons and picks "Prescott", about 4× slower at sgemm).
// The kernel is chosen when the library loads, so the fix is the environment variable
// OPENBLAS_CORETYPE (SkylakeX for AVX-512, Haswell for AVX2) set before the process starts.

import CBLAS
import Foundation

extension BLAS {
    /// OpenBLAS's name for the kernels in use, e.g. "SkylakeX", "Haswell", "Prescott".
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// The OPENBLAS_CORETYPE this CPU supports, from /proc/cpuinfo flags (nil when unknown).
    public static var suggestedCoreType: String? {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        if flags.contains("avx512f") && flags.contains("avx512bw") { return "SkylakeX" }
        if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
        return nil
    }

    /// A one-line warning when OpenBLAS runs generic kernels on a CPU that could do better.
    public static var kernelWarning: String? {
        let core = coreName.lowercased()
        guard ["prescott", "core2", "nehalem", "atom", "unknown"].contains(core), let better = suggestedCoreType else { return nil }
        return "warning: OpenBLAS chose its generic \(coreName) kernels on a CPU that supports \(better); "
            + "export OPENBLAS_CORETYPE=\(better) before running fedmerge for ~4× faster matrix products"
    }
}
