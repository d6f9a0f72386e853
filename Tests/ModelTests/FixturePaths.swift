// FixturePaths: where the committed fixtures and the fetched asset cache live, seen from a test file.

import Foundation
import XCTest

enum FixturePaths {
    /// The repository root: this file is Tests/ModelTests/FixturePaths.swift.
    static let repositoryRoot: String = {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }()

    /// Tests/Fixtures/<area>/<name>
    static func fixture(_ area: String, _ name: String) -> String {
        repositoryRoot + "/Tests/Fixtures/" + area + "/" + name
    }

    /// .cache/<relative> (fetched by scripts/fetch-assets.sh, not committed); skips the test when absent.
    static func asset(_ relative: String) throws -> String {
        let path = repositoryRoot + "/.cache/" + relative
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("asset cache absent: \(path) not found; run `bash scripts/fetch-assets.sh` to fetch it")
        }
        return path
    }

    /// Writes `contents` to a fresh temporary file and returns its path.
    static func temporaryFile(named name: String, contents: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fedmerge-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(name)
        try Data(contents.utf8).write(to: url)
        return url.path
    }
}
