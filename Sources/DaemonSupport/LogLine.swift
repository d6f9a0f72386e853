// A log line as a value: what a daemon's pure transition function asks its shell to write
// (the aggregator's and the agent's `step` return these among their effects, so tests can
// see them and no logger is called from pure code).

import Logging

/// A log line the shell writes; values a peer chose are already escaped.
public struct LogLine: Sendable, Equatable {
    public var level: Logger.Level
    public var message: String
    public var metadata: [String: String]
    public init(_ level: Logger.Level, _ message: String, _ metadata: [String: String] = [:]) {
        self.level = level
        self.message = message
        self.metadata = metadata
    }
}
