// StatisticsAudit: the privacy audit of one stats.safetensors — what its layer-0 Gram gives
// away (LayerZeroAudit), what a deeper layer's Gram gives away (DeepLayerAudit), and, when the
// agent's own data is at hand (a self-audit before upload), how that compares with the truth.

import Foundation
import LinAlg
import SafeTensors

public enum AuditError: Error, CustomStringConvertible, Equatable {
    case missingGram(file: String, linear: String)
    case badGram(file: String, tensor: String, shape: [Int], expected: Int)
    case badMetadata(file: String, key: String, value: String)
    case noSuchLayer(layer: Int, layers: Int)

    public var description: String {
        switch self {
        case let .missingGram(file, linear): return "\(file): no Gram for \(linear) (neither '\(linear).gram' nor '\(linear).gram.same_as')"
        case let .badGram(file, tensor, shape, expected): return "\(file): '\(tensor)' has shape \(shape), expected [\(expected), \(expected)]"
        case let .badMetadata(file, key, value): return "\(file): metadata '\(key)' = '\(value)' cannot be read"
        case let .noSuchLayer(layer, layers): return "layer \(layer) does not exist (the model has layers 0..<\(layers))"
        }
    }
}

public struct StatisticsAuditReport: Sendable, Codable {
    public struct Token: Sendable, Codable {
        public var token: String
        public var id: Int32
        public var recovered: Double?
        public var truth: Int?
    }
    public struct LayerResult: Sendable, Codable {
        public var linear: String
        public var method: String
        public var numRows: Int
        /// Top recovered tokens (special tokens excluded).
        public var top: [Token]
        public var score: VocabularyScore?
        // Layer 0 only.
        public var screenedPairs: Int?
        public var survivingPairs: Int?
        public var solvedPairs: Int?
        public var nnlsRelativeResidual: Double?
        public var nnlsRounds: Int?
        public var nnlsConverged: Bool?
        /// Layer 0, with truth: recovered (token, position) pairs equal to the true ones, both ways.
        public var exactMultiset: Bool?
    }
    public var model: String
    public var stats: String
    public var noise: GramNoiseAccounting?
    public var layer0: LayerResult
    public var deep: LayerResult?
    public var seconds: Double
}

public enum StatisticsAudit {
    /// The saved name (`bert.` prefix) of layer `l`'s query.
    static func queryName(_ l: Int) -> String { ModelDirectory.savedName("encoder.layer.\(l).attention.self.query") }

    /// The stored Gram of `linear` (following same_as) and its num_rows.
    public static func gram(_ linear: String, in file: SafeTensorsFile) throws -> (Tensor<Float>, Int) {
        var stored = linear
        if !file.contains(linear + ".gram"), let other = file.metadata[linear + ".gram.same_as"] { stored = other }
        guard file.contains(stored + ".gram") else { throw AuditError.missingGram(file: file.path, linear: linear) }
        let g = try file.floatTensor(stored + ".gram")
        guard g.rank == 2, g.shape[0] == g.shape[1] else { throw AuditError.badGram(file: file.path, tensor: stored + ".gram", shape: g.shape, expected: g.shape.first ?? 0) }
        let key = stored + ".gram.num_rows"
        guard let rows = file.metadata[key].flatMap(Int.init) else {
            throw AuditError.badMetadata(file: file.path, key: key, value: file.metadata[key] ?? "(absent)")
        }
        return (g, rows)
    }

    public static func run(model: BertEncoder, modelPath: String, tokenizer: WordPieceTokenizer, stats: SafeTensorsFile,
                           positions: Int, deepLayer: Int?, truth: GramSampleTokens?, batch: Int = 1500, rounds: Int = 30,
                           top: Int = 30) throws -> StatisticsAuditReport {
        let started = Date()
        let noise = try stats.metadata["gram.privacy"].map { text in
            do { return try JSONDecoder().decode(GramNoiseAccounting.self, from: Data(text.utf8)) } catch {
                throw AuditError.badMetadata(file: stats.path, key: "gram.privacy", value: String(text.prefix(80)))
            }
        }
        // A noisy Gram's noise has spectral edge ≈ 2σ√d (the attacker reads σ from the metadata).
        func floor(_ linear: String, _ d: Int) -> Double { 2 * (noise?.gramStd[linear] ?? 0) * Double(d).squareRoot() }
        let special: Set<Int32> = [tokenizer.clsID, tokenizer.sepID, tokenizer.padID]
        func topTokens(_ ranking: [Int32], _ counts: [Int32: Double]?) -> [StatisticsAuditReport.Token] {
            ranking.lazy.filter { !special.contains($0) }.prefix(top).map { id in
                .init(token: tokenizer.token(for: id), id: id, recovered: counts.map { c in c[id] ?? 0 },
                      truth: truth.map { t in t.tokenCounts[id] ?? 0 })
            }
        }

        let name0 = queryName(0)
        let (g0, rows0) = try gram(name0, in: stats)
        let recovery = try LayerZeroAudit.recover(gram: g0, vectors: LayerZeroVectors(model: model), positions: positions,
                                                  noiseFloor: floor(name0, g0.shape[0]), batch: batch, maxRounds: rounds)
        var exact: Bool?
        if let truth {
            var recovered: [GramSampleTokens.PairKey: Int] = [:]
            for p in recovery.pairs where p.count.rounded() >= 1 { recovered[.init(token: p.token, position: p.position)] = Int(p.count.rounded()) }
            exact = recovered == truth.pairCounts
        }
        let layer0 = StatisticsAuditReport.LayerResult(
            linear: name0, method: "capacity screen 1/(vᵀ(G₊+μI)⁻¹v) over vocabulary × positions, then NNLS on the rank-one terms by column generation",
            numRows: rows0, top: topTokens(recovery.ranking, recovery.tokenCounts),
            score: truth.map { VocabularyScore(ranking: recovery.ranking, recovered: recovery.tokenCounts, truth: $0.tokenCounts, excluded: special) },
            screenedPairs: recovery.screened, survivingPairs: recovery.survivors, solvedPairs: recovery.solvedWith,
            nnlsRelativeResidual: recovery.relativeResidual, nnlsRounds: recovery.rounds, nnlsConverged: recovery.converged,
            exactMultiset: exact)

        var deep: StatisticsAuditReport.LayerResult?
        if let l = deepLayer {
            guard l >= 1, l < model.config.numHiddenLayers else { throw AuditError.noSuchLayer(layer: l, layers: model.config.numHiddenLayers) }
            let name = queryName(l)
            let (g, rows) = try gram(name, in: stats)
            let candidates = try DeepLayerAudit.contextFreeRows(model: model, tokenizer: tokenizer, layer: l)
            let ranked = try DeepLayerAudit.rank(gram: g, rows: candidates, vocabularySize: model.config.vocabSize,
                                                 noiseFloor: floor(name, g.shape[0]))
            deep = .init(linear: name, method: "capacity of each token's context-free row ([CLS] w [SEP]) in the Gram",
                         numRows: rows, top: topTokens(ranked.ranking, nil),
                         score: truth.map { VocabularyScore(ranking: ranked.ranking, recovered: nil, truth: $0.tokenCounts, excluded: special) })
        }
        return StatisticsAuditReport(model: modelPath, stats: stats.path, noise: noise, layer0: layer0, deep: deep,
                                     seconds: Date().timeIntervalSince(started))
    }
}
