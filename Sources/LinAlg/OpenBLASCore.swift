// Which OpenBLAS kernel family runs, and the one this CPU should run.
//
// Debian's OpenBLAS 0.3.21 predates some current Xeons (e.g. family 6 model 207) and falls
// back to its generic "Prescott" kernels on them: about a fifth of the speed. OpenBLAS picks
// its kernels once, when the library loads, from OPENBLAS_CORETYPE or CPU detection, so the
// only fix from inside a process is to restart it with the variable set. A user's own
// OPENBLAS_CORETYPE is always respected.

import CBLAS
import Foundation

public enum OpenBLASCore {
    /// The kernel family OpenBLAS chose for this process (e.g. "Haswell", "SkylakeX").
    public static var current: String { String(cString: openblas_get_corename()) }

    /// The kernel family to ask for, or nil when OpenBLAS's own choice should stand
    /// (the user set OPENBLAS_CORETYPE, or OpenBLAS did not fall back to generic kernels).
    public static func recommended(cpuFlags: Set<String> = cpuFlags(),
                                   environment: [String: String] = ProcessInfo.processInfo.environment,
                                   current: String = current) -> String? {
        guard environment["OPENBLAS_CORETYPE"] == nil, current == "Prescott" else { return nil }
        if cpuFlags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) { return "SkylakeX" }
        if cpuFlags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// Flags of the first processor in /proc/cpuinfo (empty where there is none).
    public static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// Restarts this executable with OPENBLAS_CORETYPE set when `recommended()` names a kernel
    /// family; returns normally otherwise (or if the restart fails).
    public static func restartWithRecommendedKernelsIfNeeded() {
        guard let core = recommended() else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        unsetenv("OPENBLAS_CORETYPE")     // exec failed: carry on with the generic kernels
    }
}
