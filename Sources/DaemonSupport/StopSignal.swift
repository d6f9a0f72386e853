// SIGINT/SIGTERM → a flag the daemon loops poll, so a stop finishes the message in hand
// (and its fsync) and leaves the spool consistent instead of dying mid-write.

import Foundation

public enum StopSignal {
    nonisolated(unsafe) private static var received: sig_atomic_t = 0

    /// Installs the handlers (idempotent). A second signal while stopping exits at once.
    public static func install() {
        let handler: @convention(c) (Int32) -> Void = { signo in
            if StopSignal.received != 0 { _exit(128 + signo) }
            StopSignal.received = signo
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
    }

    /// The signal that asked us to stop, or nil.
    public static var requested: Int32? { received == 0 ? nil : Int32(received) }
}

/// Exit codes shared by `fedmerge agent` and `fedmerge aggregator` (documented in --help).
public enum DaemonExit: Int32, Sendable {
    case success = 0
    case failure = 1
    case badConfig = 2
    case roundFailed = 3
    case refused = 4
    case interrupted = 130

    public static let help = """
    Exit codes: 0 round complete; 1 unexpected error; 2 invalid config (the message names the file and key);
    3 the round failed (e.g. too few agents at the deadline; the spool is kept; an agent with --once: the
    aggregator gave up the secure merge it served); 4 refused by the
    aggregator or TLS set-up failed; 130 stopped by SIGINT/SIGTERM (state on disk is consistent; run again to resume).
    """
}
