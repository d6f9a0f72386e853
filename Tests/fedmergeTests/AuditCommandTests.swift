// `fedmerge audit` and `fedmerge stats --gram-noise-*` as a user runs them, on the toy task of
// ModelCommandsTests: a self-audit recovers the exact token × position multiset of a small
// agent's Gram sample; with DP noise the statistics carry their accounting and the audit says so.

import Foundation
import SafeTensors
import XCTest

extension ModelCommandsTests {
    func testAuditRecoversTheToyAgentsTokensAndReadsDPAccounting() throws {
        try writeToyTask()
        _ = try run(["finetune", "--model", tmp + "/base", "--train", tmp + "/train.jsonl", "--out", tmp + "/tuned",
                     "--epochs", "1", "--batch-size", "8", "--max-len", "16"])
        let sample = ["--gram-batches", "2", "--batch-size", "4", "--max-len", "16", "--seed", "5"]
        _ = try run(["stats", "--model", tmp + "/tuned", "--data", tmp + "/train.jsonl", "--out", tmp + "/stats.safetensors"] + sample)
        let printed = try run(["audit", "--model", tmp + "/tuned", "--stats", tmp + "/stats.safetensors", "--out", tmp + "/audit",
                               "--positions", "16", "--deep-layer", "0", "--data", tmp + "/train.jsonl"] + sample)
        XCTAssertTrue(printed.contains("multiset recovered exactly: true"), printed)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: tmp + "/audit/audit.json"))) as! [String: Any]
        let layer0 = report["layer0"] as! [String: Any]
        XCTAssertEqual(layer0["exactMultiset"] as? Bool, true)
        XCTAssertEqual((layer0["score"] as! [String: Any])["recallAtDistinct"] as? Double, 1)
        XCTAssertTrue(try String(contentsOfFile: tmp + "/audit/audit.svg", encoding: .utf8).hasPrefix("<svg"))

        _ = try run(["stats", "--model", tmp + "/tuned", "--data", tmp + "/train.jsonl", "--out", tmp + "/noisy.safetensors",
                     "--gram-noise-epsilon", "1", "--gram-noise-clip", "0.5", "--gram-noise-seed", "3"] + sample)
        XCTAssertNotNil(try SafeTensorsFile(path: tmp + "/noisy.safetensors").metadata["gram.privacy"])
        let noisy = try run(["audit", "--model", tmp + "/tuned", "--stats", tmp + "/noisy.safetensors", "--out", tmp + "/audit-noisy",
                             "--positions", "16", "--deep-layer", "0"])
        XCTAssertTrue(noisy.contains("DP-noised: ε 1"), noisy)
    }
}
