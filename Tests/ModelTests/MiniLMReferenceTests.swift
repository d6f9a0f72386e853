// The encoder on the real all-MiniLM-L6-v2 against an independent float64 numpy forward
// (Tests/Fixtures/model/make_reference.py, token ids from HF `tokenizers`).

import Foundation
import LinAlg
@testable import Model
import XCTest

final class MiniLMReferenceTests: XCTestCase {
    struct Reference: Decodable {
        struct Case: Decodable { let text: String; let ids: [Int32]; let hidden: [Float]; let pooler: [Float]; let embedding: [Float] }
        let hidden_size: Int
        let cases: [Case]
    }

    func loadReference() throws -> Reference {
        let data = try Data(contentsOf: URL(fileURLWithPath: ModelAssets.fixtures + "/minilm_reference.json"))
        return try JSONDecoder().decode(Reference.self, from: data)
    }

    /// All six sentences in one right-padded batch (lengths 4–21), so the padding mask is
    /// exercised too; every real token's last hidden state must match numpy to 1e-4 (Float
    /// accumulation over 6 layers of 384-wide dot products leaves ~1e-5; the fixture keeps 6
    /// significant digits).
    func testLastHiddenStatesMatchNumpyReferenceWithinOneEMinus4() throws {
        let dir = try ModelAssets.miniLM()
        let ref = try loadReference()
        XCTAssertGreaterThanOrEqual(ref.cases.count, 5)
        let model = try ModelDirectory.load(dir)
        let input = try EncoderInput(sequences: ref.cases.map(\.ids))
        try model.forward(input, head: false)
        let h = model.lastHiddenState
        let (T, C) = (input.sequenceLength, ref.hidden_size)
        var worst: Float = 0
        for (b, c) in ref.cases.enumerated() {
            XCTAssertEqual(c.hidden.count, c.ids.count * C)
            for t in 0..<c.ids.count {
                for j in 0..<C { worst = max(worst, abs(h.storage[(b * T + t) * C + j] - c.hidden[t * C + j])) }
            }
        }
        XCTAssertLessThanOrEqual(worst, 1e-4, "max abs difference of last hidden states")
    }

    func testSentenceEmbeddingsAndPoolerMatchNumpyReference() throws {
        let dir = try ModelAssets.miniLM()
        let ref = try loadReference()
        let model = try ModelDirectory.load(dir)
        let input = try EncoderInput(sequences: ref.cases.map(\.ids))
        let e = try model.sentenceEmbeddings(input)
        let C = ref.hidden_size
        for (b, c) in ref.cases.enumerated() {
            for j in 0..<C { XCTAssertEqual(e.storage[b * C + j], c.embedding[j], accuracy: 1e-5, "\(c.text)[\(j)]") }
        }
        // The pooler (CLS → dense → tanh) is the BertForSequenceClassification path.
        let head = BertEncoder(base: model, labels: ["a", "b"], problemType: .singleLabel, pooling: .cls, seed: 1)
        try head.forward(input)
        for (b, c) in ref.cases.enumerated() {
            for j in 0..<C { XCTAssertEqual(head.acts.pooled.pointer[b * C + j], c.pooler[j], accuracy: 1e-4, "pooler \(c.text)[\(j)]") }
        }
        // The logits-only path (predict, evaluate, EVAL) runs the last layer on the [CLS] rows alone.
        head.acts.pooled.pointer.update(repeating: 0, count: ref.cases.count * C)
        try head.forwardLogits(input)
        for (b, c) in ref.cases.enumerated() {
            for j in 0..<C { XCTAssertEqual(head.acts.pooled.pointer[b * C + j], c.pooler[j], accuracy: 1e-4, "logits-only pooler \(c.text)[\(j)]") }
        }
    }
}
