// Logging for the daemons: swift-log lines on stderr with a timestamp, level and the
// metadata (agent, round, bytes, timings) every call site attaches.

import Foundation
import Logging

public enum DaemonLogging {
    /// Installs the stderr handler at `level`. Call once, before the first Logger is made.
    public static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }

    /// A fatal message on stderr, for errors before or outside the daemon loop.
    public static func fail(_ message: String) {
        FileHandle.standardError.write(Data(("error: " + message + "\n").utf8))
    }
}
