// GramCollector: each linear's Gram equals Σ XᵀX over its input rows captured example by
// example without padding, although the collector saw padded batches.

import LinAlg
@testable import Model
import XCTest

final class GramCollectorTests: XCTestCase {
    let sequences: [[Int32]] = [[2, 5, 9, 11, 3], [2, 7, 3], [2, 20, 21, 3], [2, 4, 3], [2, 6, 8, 10, 12, 14, 3]]

    func testGramEqualsXtXOfUnpaddedInputsAndCountsRows() throws {
        let model = tinyStatisticsModel()
        // Truth: every example alone (no padding), rows captured, XᵀX summed in Double.
        let capture = InputCapture()
        model.collectors = [capture]
        for s in sequences { try model.forward(EncoderInput(sequences: [s])) }
        // Collector: two padded batches.
        let gram = GramCollector()
        model.collectors = [gram]
        try model.forward(EncoderInput(sequences: Array(sequences[0..<3])))
        try model.forward(EncoderInput(sequences: Array(sequences[3...])))

        let tokens = sequences.map(\.count).reduce(0, +)
        XCTAssertEqual(model.linearSites.count, 2 * 6 + 2)
        for site in model.linearSites {
            let x = capture.rows[site.name]!
            let d = site.inDim
            var truth = [Double](repeating: 0, count: d * d)
            for r in x { for i in 0..<d { for j in 0..<d { truth[i * d + j] += Double(r[i]) * Double(r[j]) } } }
            let g = try XCTUnwrap(gram.gram(of: site.name), site.name)
            XCTAssertEqual(g.shape, [d, d])
            let scale = truth.map(abs).max()!
            for k in 0..<(d * d) {
                // fp32 syrk of ≤ 7 rows per batch, summed in fp64: relative error ~1e-6.
                XCTAssertEqual(Double(g.storage[k]), truth[k], accuracy: 1e-5 * scale, "\(site.name)[\(k)]")
            }
            XCTAssertEqual(gram.rows(of: site.name), site.perExample ? sequences.count : tokens, site.name)
            XCTAssertEqual(x.count, gram.rows(of: site.name))
        }
    }

    func testExportStoresQueryGramOnceWithSameAsAndRowCounts() throws {
        let model = tinyStatisticsModel()
        let gram = GramCollector()
        model.collectors = [gram]
        try model.forward(EncoderInput(sequences: sequences))
        let out = gram.export(naming: ModelDirectory.savedName)
        let names = Set(out.tensors.map(\.name))
        XCTAssertTrue(names.contains("bert.encoder.layer.0.attention.self.query.gram"))
        XCTAssertFalse(names.contains("bert.encoder.layer.0.attention.self.key.gram"))
        XCTAssertTrue(names.contains("bert.encoder.layer.1.output.dense.gram"))
        XCTAssertTrue(names.contains("bert.pooler.dense.gram"))
        XCTAssertTrue(names.contains("classifier.gram"))
        XCTAssertEqual(out.metadata["bert.encoder.layer.1.attention.self.value.gram.same_as"], "bert.encoder.layer.1.attention.self.query")
        XCTAssertEqual(out.metadata["bert.encoder.layer.0.intermediate.dense.gram.num_rows"], "\(sequences.map(\.count).reduce(0, +))")
        XCTAssertEqual(out.metadata["classifier.gram.num_rows"], "5")
        XCTAssertEqual(out.tensors.first { $0.name == "bert.encoder.layer.0.output.dense.gram" }?.tensor.shape, [12, 12])
    }
}
