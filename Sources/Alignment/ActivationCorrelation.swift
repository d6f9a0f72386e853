// ActivationCorrelation: Pearson correlations between the hidden units of a reference model A
// and a model B on the same text — residual stream points, Q/K/V outputs and feed-forward
// activations of every layer — accumulated batch by batch over non-padding tokens.

import LinAlg
import Model

/// Where in the encoder a set of units is read.
public enum AlignmentPoint: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Residual stream point k: 0 after the embeddings, 2l+1 after layer l's attention block
    /// (its LayerNorm output), 2l+2 leaving layer l.
    case residual(Int)
    case query(Int), key(Int), value(Int)
    /// Layer l's intermediate activations after GELU.
    case feedForward(Int)

    /// Residual points in stream order, then each layer's query, key, value, feed-forward.
    public static func < (a: AlignmentPoint, b: AlignmentPoint) -> Bool { a.order.lexicographicallyPrecedes(b.order) }
    private var order: [Int] {
        switch self {
        case let .residual(k): return [0, k]
        case let .query(l): return [1, l, 0]
        case let .key(l): return [1, l, 1]
        case let .value(l): return [1, l, 2]
        case let .feedForward(l): return [1, l, 3]
        }
    }

    public var description: String {
        switch self {
        case let .residual(k): return "residual.\(k)"
        case let .query(l): return "layer.\(l).query"
        case let .key(l): return "layer.\(l).key"
        case let .value(l): return "layer.\(l).value"
        case let .feedForward(l): return "layer.\(l).feed_forward"
        }
    }
}

/// One forward pass's activations at every alignment point: the rows (non-padding tokens, in
/// order) a collector sees, plus Q, K, V computed from the rows Q, K and V read.
final class ActivationCapture: StatisticsCollector {
    let needsInputs = true
    let needsBackward = false
    private let model: BertEncoder
    /// point → (rows × width) row-major.
    var captured: [AlignmentPoint: [Float]] = [:]
    var rowCount = 0

    init(model: BertEncoder) { self.model = model }

    func observeInput(of sites: [LinearSite], rows: UnsafePointer<Float>, count: Int) {
        let name = sites[0].name
        guard name.hasPrefix("encoder.layer.") else { return }
        let rest = name.dropFirst("encoder.layer.".count)
        guard let dot = rest.firstIndex(of: "."), let l = Int(rest[..<dot]) else { return }
        let part = rest[rest.index(after: dot)...]
        rowCount = count
        switch part {
        case "attention.self.query":
            captured[.residual(2 * l)] = Array(UnsafeBufferPointer(start: rows, count: count * sites[0].inDim))
            for site in sites {
                let point: AlignmentPoint = site.name.hasSuffix(".query") ? .query(l) : site.name.hasSuffix(".key") ? .key(l) : .value(l)
                captured[point] = linearOutput(site, rows: rows, count: count)
            }
        case "intermediate.dense":
            captured[.residual(2 * l + 1)] = Array(UnsafeBufferPointer(start: rows, count: count * sites[0].inDim))
        case "output.dense":
            captured[.feedForward(l)] = Array(UnsafeBufferPointer(start: rows, count: count * sites[0].inDim))
        default:
            break
        }
    }

    /// rows (count × in) · Wᵀ (in × out) + b: what the linear computed from these rows.
    private func linearOutput(_ site: LinearSite, rows: UnsafePointer<Float>, count: Int) -> [Float] {
        var out = [Float](repeating: 0, count: count * site.outDim)
        let w = model.parameters.value(site.name + ".weight"), b = model.parameters.value(site.name + ".bias")
        out.withUnsafeMutableBufferPointer { o in
            for r in 0..<count { (o.baseAddress! + r * site.outDim).update(from: b, count: site.outDim) }
            BLAS.gemm(transA: false, transB: true, m: count, n: site.outDim, k: site.inDim, alpha: 1, a: rows, lda: site.inDim,
                      b: w, ldb: site.inDim, beta: 1, c: o.baseAddress!, ldc: site.outDim)
        }
        return out
    }

    func export(naming name: (String) -> String) -> (tensors: [(name: String, tensor: Tensor<Float>)], metadata: [String: String]) { ([], [:]) }

    /// Runs `model` on `input` and returns its activations at every point (the last residual
    /// point from the final hidden states).
    static func run(_ model: BertEncoder, _ input: EncoderInput) throws -> [AlignmentPoint: [Float]] {
        let capture = ActivationCapture(model: model)
        let saved = model.collectors
        model.collectors = [capture]
        defer { model.collectors = saved }
        try model.forward(input, head: false)
        let hidden = model.lastHiddenState.storage, C = model.config.hiddenSize
        var last: [Float] = []
        last.reserveCapacity(capture.rowCount * C)
        for r in 0..<input.rows where input.attentionMask[r] != 0 { last += hidden[(r * C)..<((r + 1) * C)] }
        capture.captured[.residual(2 * model.config.numHiddenLayers)] = last
        return capture.captured
    }
}

/// Running sums for corr(a_i, b_j) over rows: Σa, Σb, Σa², Σb² and Σ a bᵀ, all fp64.
final class CorrelationSums {
    let width: Int
    private(set) var rows = 0
    private var sumA: [Double], sumB: [Double], squaresA: [Double], squaresB: [Double]
    private var cross: [Double]
    private var scratchA: [Double] = [], scratchB: [Double] = []

    init(width: Int) {
        self.width = width
        sumA = .init(repeating: 0, count: width); sumB = sumA; squaresA = sumA; squaresB = sumA
        cross = .init(repeating: 0, count: width * width)
    }

    /// a, b: (n × width) rows of the same tokens, A's and B's.
    func add(_ a: [Float], _ b: [Float], rows n: Int) {
        let d = width
        precondition(a.count == n * d && b.count == n * d, "activation rows differ between the models")
        scratchA = a.map(Double.init); scratchB = b.map(Double.init)
        for r in 0..<n {
            for i in 0..<d {
                let x = scratchA[r * d + i], y = scratchB[r * d + i]
                sumA[i] += x; sumB[i] += y; squaresA[i] += x * x; squaresB[i] += y * y
            }
        }
        scratchA.withUnsafeBufferPointer { pa in
            scratchB.withUnsafeBufferPointer { pb in
                cross.withUnsafeMutableBufferPointer { pc in
                    // cross (d × d) += Aᵀ (d × n) · B (n × d)
                    BLAS.gemm(transA: true, transB: false, m: d, n: d, k: n, alpha: 1, a: pa.baseAddress!, lda: d,
                              b: pb.baseAddress!, ldb: d, beta: 1, c: pc.baseAddress!, ldc: d)
                }
            }
        }
        rows += n
    }

    /// corr (width × width): A's unit i against B's unit j; 0 where either unit is constant.
    func correlation() -> Tensor<Double> {
        let d = width, n = Double(rows)
        var out = Tensor<Double>(shape: [d, d])
        func std(_ s: Double, _ q: Double) -> Double { (max(q / n - (s / n) * (s / n), 0)).squareRoot() }
        let sa = (0..<d).map { std(sumA[$0], squaresA[$0]) }, sb = (0..<d).map { std(sumB[$0], squaresB[$0]) }
        for i in 0..<d {
            for j in 0..<d {
                let covariance = cross[i * d + j] / n - (sumA[i] / n) * (sumB[j] / n)
                let scale = sa[i] * sb[j]
                out.storage[i * d + j] = scale > 1e-12 ? covariance / scale : 0
            }
        }
        return out
    }
}

/// Correlations of A's and B's units at every alignment point, fed one batch at a time.
public final class ActivationCorrelation {
    public let reference: BertEncoder
    public let model: BertEncoder
    private var sums: [AlignmentPoint: CorrelationSums] = [:]
    public private(set) var tokens = 0

    /// The two models must have the same shape unit for unit.
    public init(reference: BertEncoder, model: BertEncoder) throws {
        try SameArchitecture.require(reference.config, model.config)
        self.reference = reference
        self.model = model
    }

    /// Runs both models on `input` and adds its non-padding tokens to every point's sums.
    public func add(_ input: EncoderInput) throws {
        let a = try ActivationCapture.run(reference, input)
        let b = try ActivationCapture.run(model, input)
        let n = input.attentionMask.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }
        guard n > 0 else { return }
        for (point, rowsA) in a {
            guard let rowsB = b[point] else { continue }
            let width = rowsA.count / n
            let s = sums[point] ?? CorrelationSums(width: width)
            sums[point] = s
            s.add(rowsA, rowsB, rows: n)
        }
        tokens += n
    }

    /// corr(A unit i, B unit j) at every point seen.
    public func correlations() -> [AlignmentPoint: Tensor<Double>] { sums.mapValues { $0.correlation() } }
}
