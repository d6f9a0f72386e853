// Start-up check of the private data files (train and test): read them the way training and
// evaluation will, so a bad file fails at start (or `--check`) with its name and line, not
// after the upload when the test split is first read.

import Foundation
import Model

extension ModelWork {
    /// Throws `.data` naming the file (and line) of the first problem: not UTF-8, no examples,
    /// a missing text/label column or field, a label outside `data.labels` (or, for the test
    /// split, outside the training file's labels).
    public func checkData() throws {
        do {
            for path in [config.data.train, config.data.test] { try Self.requireUTF8(path) }
            let train = try loadTrain()
            _ = try loadTest(labelNames: train.labelNames)
        } catch {
            throw AgentStartError.data(config: config.file, reason: "\(error)")
        }
    }

    /// The file's bytes are UTF-8 text; otherwise names the first line that is not.
    static func requireUTF8(_ path: String) throws {
        // An unreadable file is reported by the dataset reader, which says why.
        guard let data = FileManager.default.contents(atPath: path) else { return }
        var line = 1
        for bytes in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            if String(validating: bytes, as: UTF8.self) == nil {
                throw DataCheckError.notUTF8(file: path, line: line)
            }
            line += 1
        }
    }
}

enum DataCheckError: Error, CustomStringConvertible {
    case notUTF8(file: String, line: Int)
    var description: String {
        switch self {
        case let .notUTF8(file, line): "\(file):\(line): not UTF-8 text (convert the file to UTF-8, e.g. with iconv)"
        }
    }
}
