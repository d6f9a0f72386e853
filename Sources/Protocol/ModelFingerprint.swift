// The fingerprint that proves two daemons start from the same pretrained model: SHA-256 over
// the bytes of config.json followed by model.safetensors. The wire compares it as an opaque
// string; it needs no knowledge of what the files mean.

import Foundation

public enum ModelFingerprint {
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case missingFile(String)
        public var description: String {
            switch self {
            case .missingFile(let path): return "\(path): missing (a base model directory needs config.json and model.safetensors)"
            }
        }
    }

    /// Hex SHA-256 of `directory/config.json` ‖ `directory/model.safetensors`.
    public static func of(directory: String) throws -> String {
        let hasher = SHA256Hasher()
        for name in ["config.json", "model.safetensors"] {
            let path = directory + "/" + name
            guard let handle = FileHandle(forReadingAtPath: path) else { throw Failure.missingFile(path) }
            defer { try? handle.close() }
            while let block = try handle.read(upToCount: 8 << 20), !block.isEmpty { hasher.update(block) }
        }
        return hasher.finalizeHex()
    }
}
