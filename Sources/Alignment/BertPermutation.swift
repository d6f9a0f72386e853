// BertPermutation: one permutation of every hidden unit of a BERT — the residual stream at each
// point, each layer's attention features (Q/K, V) and feed-forward neurons — and what it does
// to each named parameter (rows and input columns; the classifier or the masked-LM head too)
// and each statistic (G ↦ P G Pᵀ).
// DESIGN.md §9; Verma & Elbayad, "Merging Text Transformer Models from Different Initializations".

import LinAlg
import Merge
import Model
import RoundContract

public struct BertPermutation: Sendable, Equatable {
    /// The units of one encoder layer. With `queryKey` mapping heads to heads, QKᵀ per head is
    /// unchanged; `value` moves V's outputs and attention.output.dense's input columns together.
    public struct Layer: Sendable, Equatable {
        /// Outputs of attention.self.query and .key (rows and bias), one permutation for both.
        public var queryKey: Permutation
        /// Outputs of attention.self.value = input columns of attention.output.dense.
        public var value: Permutation
        /// Intermediate neurons: intermediate.dense rows and bias, output.dense input columns.
        public var feedForward: Permutation
        /// Residual stream after the attention block: attention.output.dense rows and bias, its
        /// LayerNorm, intermediate.dense input columns.
        public var attentionResidual: Permutation
        /// Residual stream leaving the layer: output.dense rows and bias, its LayerNorm, and the
        /// input columns of whatever reads it next (Q, K, V of the next layer; pooler; mean-pool head).
        public var outputResidual: Permutation

        public init(queryKey: Permutation, value: Permutation, feedForward: Permutation,
                    attentionResidual: Permutation, outputResidual: Permutation) {
            self.queryKey = queryKey; self.value = value; self.feedForward = feedForward
            self.attentionResidual = attentionResidual; self.outputResidual = outputResidual
        }
    }

    /// Residual stream after the embeddings: the three embedding tables' columns and their LayerNorm.
    public var embeddings: Permutation
    public var layers: [Layer]
    /// Whether the classifier reads the residual stream (mean pooling) or the pooler's output (cls).
    public var pooling: BertConfig.Pooling

    public init(embeddings: Permutation, layers: [Layer], pooling: BertConfig.Pooling) {
        self.embeddings = embeddings; self.layers = layers; self.pooling = pooling
    }

    /// Every unit where it is.
    public init(identity config: BertConfig) {
        let (C, I) = (config.hiddenSize, config.intermediateSize)
        let layer = Layer(queryKey: .init(identity: C), value: .init(identity: C), feedForward: .init(identity: I),
                          attentionResidual: .init(identity: C), outputResidual: .init(identity: C))
        self.init(embeddings: .init(identity: C), layers: Array(repeating: layer, count: config.numHiddenLayers), pooling: config.pooling)
    }

    /// One residual permutation everywhere: the function-preserving case (a residual addition
    /// adds two vectors unit by unit, so both addends must be permuted alike).
    public mutating func setResidual(_ p: Permutation) {
        embeddings = p
        for l in layers.indices { layers[l].attentionResidual = p; layers[l].outputResidual = p }
    }

    /// The permutation that undoes this one, part by part.
    public var inverse: BertPermutation {
        BertPermutation(embeddings: embeddings.inverse, layers: layers.map {
            Layer(queryKey: $0.queryKey.inverse, value: $0.value.inverse, feedForward: $0.feedForward.inverse,
                  attentionResidual: $0.attentionResidual.inverse, outputResidual: $0.outputResidual.inverse)
        }, pooling: pooling)
    }

    /// The gather of the units at `point` (AlignmentPoint's numbering of residual points).
    public func permutation(at point: AlignmentPoint) -> Permutation {
        switch point {
        case let .residual(k): return k == 0 ? embeddings : k % 2 == 1 ? layers[k / 2].attentionResidual : layers[k / 2 - 1].outputResidual
        case let .query(l), let .key(l): return layers[l].queryKey
        case let .value(l): return layers[l].value
        case let .feedForward(l): return layers[l].feedForward
        }
    }

    /// Residual stream read by layer l's Q, K and V.
    func layerInput(_ l: Int) -> Permutation { l == 0 ? embeddings : layers[l - 1].outputResidual }
    var lastResidual: Permutation { layers.last?.outputResidual ?? embeddings }

    /// The gathers of parameter `name` (unprefixed or `bert.`-prefixed HF name): rows (its
    /// first axis; a vector's only one) and input columns; nil leaves that axis alone.
    public func axes(of name: String) throws -> (rows: Permutation?, columns: Permutation?) {
        let n = name.hasPrefix("bert.") ? String(name.dropFirst(5)) : name
        if n.hasPrefix("embeddings.") {
            if n.hasSuffix("_embeddings.weight") { return (nil, embeddings) }
            if n.hasPrefix("embeddings.LayerNorm.") { return (embeddings, nil) }
        } else if n.hasPrefix("encoder.layer.") {
            let rest = n.dropFirst("encoder.layer.".count)
            guard let dot = rest.firstIndex(of: "."), let l = Int(rest[..<dot]), layers.indices.contains(l) else {
                throw AlignmentError.unknownParameter(name: name)
            }
            let part = String(rest[rest.index(after: dot)...])
            let layer = layers[l]
            let isWeight = part.hasSuffix(".weight")
            switch part {
            case "attention.self.query.weight", "attention.self.query.bias", "attention.self.key.weight", "attention.self.key.bias":
                return (layer.queryKey, isWeight ? layerInput(l) : nil)
            case "attention.self.value.weight", "attention.self.value.bias":
                return (layer.value, isWeight ? layerInput(l) : nil)
            case "attention.output.dense.weight", "attention.output.dense.bias":
                return (layer.attentionResidual, isWeight ? layer.value : nil)
            case "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias":
                return (layer.attentionResidual, nil)
            case "intermediate.dense.weight", "intermediate.dense.bias":
                return (layer.feedForward, isWeight ? layer.attentionResidual : nil)
            case "output.dense.weight", "output.dense.bias":
                return (layer.outputResidual, isWeight ? layer.feedForward : nil)
            case "output.LayerNorm.weight", "output.LayerNorm.bias":
                return (layer.outputResidual, nil)
            default: break
            }
        } else if n == "pooler.dense.weight" {
            // The pooler's outputs are not residual units: only its input columns move.
            return (nil, lastResidual)
        } else if n == "pooler.dense.bias" {
            return (nil, nil)
        } else if n.hasPrefix("cls.predictions.") {
            // BertForMaskedLM's head. Its decoder is tied to the word embeddings, whose columns
            // follow the embeddings' residual permutation, so the transform's outputs (dense rows,
            // its LayerNorm) must follow that one too for logits = LN(·)·wteᵀ to stay; its input
            // is the last layer's output. The decoder bias is per vocabulary id: it never moves.
            switch n.dropFirst("cls.predictions.".count) {
            case "transform.dense.weight": return (embeddings, lastResidual)
            case "transform.dense.bias", "transform.LayerNorm.weight", "transform.LayerNorm.bias": return (embeddings, nil)
            case "decoder.weight": return (nil, embeddings)
            case "bias", "decoder.bias": return (nil, nil)
            default: break
            }
        } else if n.hasPrefix("classifier") && (n.hasSuffix(".weight") || n.hasSuffix(".bias")) {
            // `classifier.` or a merged model's `classifier_<agent>.`: labels never move; the
            // input is the residual stream only under mean pooling.
            return (nil, n.hasSuffix(".weight") && pooling == .mean ? lastResidual : nil)
        }
        throw AlignmentError.unknownParameter(name: name)
    }

    /// `tensor` of parameter `name` with its units gathered.
    public func permuted(_ name: String, _ tensor: Tensor<Float>) throws -> Tensor<Float> {
        let (rows, columns) = try axes(of: name)
        return try Self.gather(tensor, rows: rows, columns: columns, name: name)
    }

    /// Every tensor of a model, permuted (names kept, order kept).
    public func permuted(_ model: NamedTensors) throws -> NamedTensors {
        var out = NamedTensors()
        for (name, tensor) in model.pairs { out.set(name, try permuted(name, tensor)) }
        return out
    }

    /// Permutes a loaded model's parameters in place.
    public func apply(to model: BertEncoder) throws {
        for e in model.parameters.entries {
            model.parameters.set(e.name, from: try permuted(e.name, model.parameters.tensor(e.name)!))
        }
    }

    /// The statistics of a model permuted as the model is: a Gram of linear X (d_in × d_in)
    /// follows X's input columns on both sides (G ↦ P G Pᵀ), a K-FAC output factor X's rows on
    /// both sides, a diagonal Fisher its parameter. Metadata (row counts, same_as) is unchanged.
    public func permuted(_ statistics: NamedStatistics) throws -> NamedStatistics {
        var out = NamedTensors()
        for (name, tensor) in statistics.tensors.pairs {
            if name.hasSuffix(StatisticKey.gramSuffix) {
                let linear = String(name.dropLast(StatisticKey.gramSuffix.count))
                let p = try axes(of: linear + ".weight").columns
                out.set(name, try Self.gather(tensor, rows: p, columns: p, name: name))
            } else if let linear = Self.strip(name, suffix: StatisticKey.kfacOutSuffix) {
                let p = try axes(of: linear + ".weight").rows
                out.set(name, try Self.gather(tensor, rows: p, columns: p, name: name))
            } else if let parameter = Self.strip(name, suffix: StatisticKey.fisherSuffix) {
                out.set(name, try permuted(parameter, tensor))
            } else {
                throw AlignmentError.unknownStatistic(name: name)
            }
        }
        return NamedStatistics(tensors: out, metadata: statistics.metadata)
    }

    private static func strip(_ name: String, suffix: String) -> String? {
        name.hasSuffix(suffix) ? String(name.dropLast(suffix.count)) : nil
    }

    /// out[i, j] = t[rows[i], columns[j]] over the matrix view (first axis × the rest); a
    /// vector has rows only.
    static func gather(_ t: Tensor<Float>, rows: Permutation?, columns: Permutation?, name: String) throws -> Tensor<Float> {
        if rows == nil && columns == nil { return t }
        let (r, c) = t.rank == 1 ? (t.count, 1) : (t.rows, t.cols)
        if let rows, rows.count != r {
            throw AlignmentError.shapeMismatch(tensor: name, expected: [rows.count] + (t.rank == 1 ? [] : [c]), actual: t.shape)
        }
        if let columns, t.rank != 2 || columns.count != c {
            throw AlignmentError.shapeMismatch(tensor: name, expected: [r, columns.count], actual: t.shape)
        }
        var out = t
        t.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<r {
                    let from = (rows?[i] ?? i) * c
                    if let columns {
                        for j in 0..<c { dst[i * c + j] = src[from + columns[j]] }
                    } else {
                        for j in 0..<c { dst[i * c + j] = src[from + j] }
                    }
                }
            }
        }
        return out
    }
}
