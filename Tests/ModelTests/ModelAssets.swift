// Test support: where the fetched real assets live (`scripts/fetch-assets.sh` puts them in
// .cache/ at the repository root; FEDMERGE_MINILM_DIR overrides) and where fixtures are.

import Foundation
import XCTest

enum ModelAssets {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    static var fixtures: String { repositoryRoot + "/Tests/Fixtures/model" }

    /// The MiniLM-L6 directory, or an XCTSkip that says how to get it.
    static func miniLM() throws -> String {
        let dir = ProcessInfo.processInfo.environment["FEDMERGE_MINILM_DIR"] ?? repositoryRoot + "/.cache/models/minilm-l6"
        guard FileManager.default.fileExists(atPath: dir + "/model.safetensors") else {
            throw XCTSkip("real MiniLM-L6 not found at \(dir); run `bash scripts/fetch-assets.sh` (CI does) to enable this test")
        }
        return dir
    }
}
