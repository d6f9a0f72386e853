// Why an agent cannot start, and the exit code each reason maps to: the one place that turns
// start-up failures (config-adjacent files, the workdir, TLS credentials) into exit codes.

import DaemonSupport
import Foundation
import Protocol

public enum AgentStartError: Error, CustomStringConvertible {
    /// `workdir` cannot be created or written.
    case workdir(config: String, path: String, reason: String)
    /// `base_model` is missing a file or cannot be read.
    case baseModel(config: String, path: String, reason: String)
    /// Another process holds `<workdir>/agent.lock` (its pid when it wrote one).
    case workdirInUse(workdir: String, holder: Int32?)
    /// A data file (train or test) cannot be used; `reason` names the file and line.
    case data(config: String, reason: String)
    /// This agent's certificate, key or CA cannot be loaded.
    case tlsCredentials(config: String, reason: String)

    /// 2 for what the operator fixes in the config or its files, 4 for TLS credentials.
    public var exit: DaemonExit {
        switch self {
        case .workdir, .baseModel, .workdirInUse, .data: .badConfig
        case .tlsCredentials: .refused
        }
    }

    public var description: String {
        switch self {
        case let .workdir(config, path, reason):
            return "\(config): 'workdir' = \(path) is not usable: \(reason)"
        case let .baseModel(config, path, reason):
            return "\(config): 'base_model' = \(path) is not usable: \(reason)"
        case let .workdirInUse(workdir, holder):
            let who = holder.map { "process \($0)" } ?? "another process"
            return "the workdir \(workdir) is in use by \(who) (\(workdir)/agent.lock); two agents may not share a workdir — give each its own, or stop \(who)"
        case let .data(config, reason):
            return "\(config): data: \(reason)"
        case let .tlsCredentials(config, reason):
            return "\(config): TLS credentials ('tls') cannot be used: \(reason)"
        }
    }

    /// The text of a Foundation error without its domain and code noise ("PATH: Not a directory").
    static func reason(_ error: Error) -> String {
        guard let cocoa = error as? CocoaError else { return "\(error)" }
        var why = "\(cocoa.code)"
        if let underlying = cocoa.underlying.map({ $0 as NSError }), underlying.domain == NSPOSIXErrorDomain {
            why = String(cString: strerror(Int32(underlying.code)))
        }
        return cocoa.filePath.map { "\($0): \(why)" } ?? why
    }
}
