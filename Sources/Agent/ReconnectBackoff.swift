// How long an agent waits before each attempt to reach its aggregator again: 1 s, doubling,
// capped at 60 s. Quick after a blip; gentle on an aggregator that is down for long, since an
// enrolled agent keeps trying for as long as it runs (only `--once` gives up, after
// `--connect-timeout`).

enum ReconnectBackoff {
    static let first = 1.0
    static let cap = 60.0

    /// Seconds before attempt `attempt` (1 = the first retry after a loss); 0 for the first connection.
    static func delay(attempt: Int) -> Double {
        guard attempt > 0 else { return 0 }
        // 2^16 s is past the cap already; the bound keeps the shift defined for any attempt count.
        return min(cap, first * Double(1 << min(attempt - 1, 16)))
    }
}
