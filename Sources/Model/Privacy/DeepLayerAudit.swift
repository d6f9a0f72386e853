// DeepLayerAudit: the attack on a deeper layer's Gram. A deeper input row depends on the whole
// sentence, so no exact candidate set exists; the candidate for token w is its context-free
// row — layer ℓ's query input at w's position in "[CLS] w [SEP]" — and tokens are ranked by
// their capacity in that layer's Gram (RankOneCapacity; a DAGER-style span test when the Gram
// is rank-deficient). A ranking, not counts: VocabularyScore scores it with recovered = nil.

import LinAlg

public enum DeepLayerAudit {
    /// Captures the rows a named linear reads.
    final class RowCapture: StatisticsCollector {
        let linear: String
        var rows: [Float] = []
        let needsInputs = true
        let needsBackward = false
        init(linear: String) { self.linear = linear }
        func observeInput(of sites: [LinearSite], rows: UnsafePointer<Float>, count: Int) {
            guard sites.contains(where: { $0.name == linear }) else { return }
            self.rows += UnsafeBufferPointer(start: rows, count: count * sites[0].inDim)
        }
        func export(naming name: (String) -> String) -> (tensors: [(name: String, tensor: Tensor<Float>)], metadata: [String: String]) { ([], [:]) }
    }

    /// Context-free rows (V × C) of every vocabulary token at the input of `layer`'s query.
    public static func contextFreeRows(model: BertEncoder, tokenizer: WordPieceTokenizer, layer: Int, batch: Int = 512) throws -> [Float] {
        let C = model.config.hiddenSize, V = model.config.vocabSize
        let capture = RowCapture(linear: "encoder.layer.\(layer).attention.self.query")
        let saved = model.collectors
        defer { model.collectors = saved }
        model.collectors = [capture]
        var out = [Float](repeating: 0, count: V * C)
        var start = 0
        while start < V {
            let ids = Array(start..<min(start + batch, V))
            capture.rows = []
            let tokens = TokenBatch(rows: ids.map { [tokenizer.clsID, Int32($0), tokenizer.sepID] }, padID: tokenizer.padID)
            try model.forward(EncoderInput(tokens), training: false, head: false)
            for (i, id) in ids.enumerated() {
                let src = (i * 3 + 1) * C
                for c in 0..<C { out[id * C + c] = capture.rows[src + c] }
            }
            start += batch
        }
        return out
    }

    /// Every token, highest capacity in `gram` first, and the capacities.
    public static func rank(gram: Tensor<Float>, rows: [Float], vocabularySize V: Int, noiseFloor: Double = 0) throws -> (ranking: [Int32], capacities: [Double]) {
        let caps = try RankOneCapacity(gram: gram, noiseFloor: noiseFloor).capacities(rows, count: V)
        return ((0..<Int32(V)).sorted { caps[Int($0)] > caps[Int($1)] }, caps)
    }
}
