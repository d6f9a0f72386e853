// `regmean`: for every linear X.weight (out×in) with a Gram X.gram, the weight minimising
// Σᵢ ‖Xᵢ W ᵀ − Xᵢ Wᵢᵀ‖² (Jin et al., ICLR 2023): Wᵀ = (Σ G̃ᵢ)⁻¹ Σ G̃ᵢ Wᵢᵀ with
// G̃ᵢ = α Gᵢ + (1 − α) diag(Gᵢ), solved in fp64 by LinAlg's solveSymmetric (Cholesky →
// jitter → eigen pseudo-inverse), never by an explicit inverse. Other tensors are averaged.
// The right-hand side is summed relative to the first model's weight (RegMean.solve), so K
// models cost K − 1 products G̃ᵢ(Wᵢ − W₁)ᵀ: those products are most of a merge's time.

import LinAlg

public struct RegMean: MergeMethod {
    /// Solve independent linears concurrently (BLAS at one thread) rather than one after another.
    public var parallel: Bool
    public init(parallel: Bool = true) { self.parallel = parallel }
    public let name = "regmean"
    public let summary = "Closed-form least squares on the models' inputs per linear, from Grams; the rest averaged."
    public let parameters: [ParameterSpec] = [
        ParameterSpec("alpha", .perTensorNumber(0...1), default: .number(0.9),
                      doc: "Off-diagonal scale of each Gram: G̃ = αG + (1−α)diag(G). 1 = pure least squares; 0 = per-input-feature weighted average."),
        ParameterSpec("gram_normalize", .choice(["mean", "sum"]), default: .string("mean"),
                      doc: "Divide each model's Gram by its num_rows (mean) or use the raw sum (sum: models with more data weigh more)."),
    ]
    public let needsBase = false
    public func requiredStatistics(_ parameters: MergeParameters) -> Set<StatisticKind> {
        CommonParameters.headsStatistics(parameters).union([.gram])
    }
    public func makeAccumulator(validated parameters: MergeParameters, base: NamedTensors?) throws -> any MergeAccumulator {
        RegMeanAccumulator(fold: ModelFold(method: name, parameters: parameters), parameters: parameters, parallel: parallel)
    }
}

extension RegMean {
    /// W from the sums of one linear: solves (Σ G̃ᵢ) Wᵀ = Σ G̃ᵢWᵢᵀ (d×d, d×out, fp64) by
    /// solveSymmetric and returns W (out×in, fp32) with its report entry. The clear and the
    /// secure (sums-only) paths both end here, so they share every fallback.
    /// With `reference` (W₁, out×in), `rhs` is Σ G̃ᵢ(Wᵢ − W₁)ᵀ instead, and Wᵀ = W₁ᵀ + (Σ G̃ᵢ)⁻¹ rhs:
    /// the same W, one model's product fewer. That identity holds for a true inverse only, so
    /// when the chain needs jitter or the pseudo-inverse the full Σ G̃ᵢWᵢᵀ is rebuilt and solved
    /// as before (a dead input feature keeps weight 0, not W₁'s).
    static func solve(gram: Tensor<Double>, rhs: Tensor<Double>, weightName: String, outDim: Int, inDim: Int,
                      alpha: Double, reference: Tensor<Float>? = nil) throws -> (Tensor<Float>, MergeReport.TensorEntry) {
        var solution: SymmetricSolution
        do {
            solution = try solveSymmetric(gram, rhs)
            if let reference, solution.path != .cholesky {
                solution = try solveSymmetric(gram, fullRightHandSide(gram: gram, correction: rhs, reference: reference))
            }
        } catch {
            throw MergeError.solveFailed(tensor: weightName, reason: "\(error)")
        }
        let offset = solution.path == .cholesky ? reference : nil
        // Wᵀ (in×out) → W (out×in), fp32, plus W₁ when the solution is a correction to it.
        var w = TensorKernels.zerosFloat([outDim, inDim])
        solution.x.withUnsafeBufferPointer { px in
            w.withUnsafeMutableBufferPointer { pw in
                if let offset {
                    offset.withUnsafeBufferPointer { po in
                        for r in 0..<inDim { for c in 0..<outDim { pw[c * inDim + r] = Float(px[r * outDim + c] + Double(po[c * inDim + r])) } }
                    }
                } else {
                    for r in 0..<inDim { for c in 0..<outDim { pw[c * inDim + r] = Float(px[r * outDim + c]) } }
                }
            }
        }
        return (w, .init(name: weightName, rule: "regmean", solvePath: solution.path.name,
                         solveDetail: solution.path.description, conditionEstimate: solution.conditionEstimate,
                         note: alpha == 0.9 ? nil : "alpha \(alpha)"))
    }

    /// Σ G̃ᵢWᵢᵀ = Σ G̃ᵢ(Wᵢ − W₁)ᵀ + (Σ G̃ᵢ) W₁ᵀ.
    private static func fullRightHandSide(gram: Tensor<Double>, correction: Tensor<Double>, reference: Tensor<Float>) -> Tensor<Double> {
        let (d, out) = (gram.rows, correction.cols)
        var full = correction
        let wide = TensorKernels.widened(reference)
        gram.withUnsafeBufferPointer { pg in wide.withUnsafeBufferPointer { pw in full.withUnsafeMutableBufferPointer { pf in
            BLAS.gemm(transA: false, transB: true, m: d, n: out, k: d, alpha: 1, a: pg.baseAddress!, lda: d,
                      b: pw.baseAddress!, ldb: d, beta: 1, c: pf.baseAddress!, ldc: out)
        } } }
        return full
    }
}

final class RegMeanAccumulator: MergeAccumulator {
    /// Running sums of one linear: Σ wᵢG̃ᵢ (in×in) and Σ wᵢG̃ᵢ(Wᵢ − W₁)ᵀ (in×out), fp64, with W₁
    /// the first model's weight (its own term is zero, so its product is never formed).
    final class LinearSums: @unchecked Sendable {
        let weightName: String
        let linear: String
        let alpha: Double
        let outDim: Int, inDim: Int
        var gram: Tensor<Double>
        var rhs: Tensor<Double>
        var reference: Tensor<Float>?
        var result: (Tensor<Float>, MergeReport.TensorEntry)?
        /// Flops of one model's product G̃ᵢ(Wᵢ − W₁)ᵀ and of the solve, for ordering the tasks.
        var products: Double { 2 * Double(inDim * inDim) * Double(outDim) }
        var solveCost: Double { Double(inDim * inDim) * (Double(inDim) / 3 + 2 * Double(outDim)) }
        init(weightName: String, linear: String, alpha: Double, outDim: Int, inDim: Int) {
            self.weightName = weightName; self.linear = linear; self.alpha = alpha
            self.outDim = outDim; self.inDim = inDim
            gram = TensorKernels.zerosDouble([inDim, inDim]); rhs = TensorKernels.zerosDouble([inDim, outDim])
        }
    }

    private let fold: ModelFold
    private let normalizeByRows: Bool
    private let parameters: MergeParameters
    private let parallel: Bool
    private var linears: [LinearSums] = []
    private let scratch = ScratchBuffers()

    init(fold: ModelFold, parameters: MergeParameters, parallel: Bool) {
        self.fold = fold
        self.parameters = parameters
        self.normalizeByRows = parameters.string("gram_normalize") != "sum"
        self.parallel = parallel
    }

    func add(model: NamedTensors, statistics: NamedStatistics, weight: Double, name: String) throws {
        let (_, seconds) = try timed {
            let checked = try fold.check(model: model, statistics: statistics, weight: weight, name: name)
            let candidates = fold.isEmpty ? try claim(model: model, statistics: statistics, modelName: checked.name) : linears
            // Every Gram is checked before any sum changes, so a rejected model leaves no trace.
            let grams = try candidates.map { try statistics.requiredGram(forLinear: $0.linear, dimension: $0.inDim, weight: $0.weightName, model: checked.name) }
            fold.commit(checked, model: model, weight: weight)
            if linears.isEmpty { linears = candidates }
            let claimed = Set(linears.map(\.weightName))
            for n in fold.order where !fold.isSeparateHead(n) && !claimed.contains(n) {
                fold.average(n, model[n]!, weight: weight)
            }
            let linears = self.linears
            try ParallelLinears.run(count: linears.count, parallel: parallel, cost: { linears[$0].products }) { [self] i in
                self.accumulate(linears[i], weight: model[linears[i].weightName]!, gram: grams[i], modelWeight: weight)
            }
        }
        fold.addTime(seconds)
    }

    /// The first model decides which linears RegMean merges: every X.weight with a Gram for X.
    private func claim(model: NamedTensors, statistics: NamedStatistics, modelName: String) throws -> [LinearSums] {
        var found: [LinearSums] = []
        for n in model.names where !fold.isSeparateHead(n) && n.hasSuffix(".weight") {
            let linear = String(n.dropLast(".weight".count))
            guard statistics.hasGram(forLinear: linear) else { continue }
            let shape = model[n]!.shape
            guard shape.count == 2 else {
                throw MergeError.shapeMismatch(model: modelName, tensor: n, expected: [shape.first ?? 0, shape.last ?? 0], actual: shape)
            }
            let alpha = parameters.number("alpha", forTensor: n) ?? 0.9
            found.append(LinearSums(weightName: n, linear: linear, alpha: alpha, outDim: shape[0], inDim: shape[1]))
        }
        guard !found.isEmpty else { throw MergeError.missingStatistic(model: modelName, key: "<linear>.gram (no linear has a Gram)") }
        return found
    }

    /// Σ G̃ += w s G̃ᵢ and Σ G̃(W − W₁)ᵀ += w s G̃ᵢ (Wᵢ − W₁)ᵀ, s = 1/num_rows under gram_normalize: mean.
    private func accumulate(_ sums: LinearSums, weight w: Tensor<Float>, gram g: NamedStatistics.Gram, modelWeight: Double) {
        let d = sums.inDim, out = sums.outDim
        let scale = modelWeight * (normalizeByRows ? 1 / Double(g.numRows) : 1)
        let offDiagonal = scale * sums.alpha
        let reference = sums.reference
        if reference == nil { sums.reference = w }
        scratch.with(count: d * d) { gTilde in
            // G̃ᵢ (d×d, fp64): off-diagonal scaled by α, diagonal kept, all times the model's scale.
            g.sum.withUnsafeBufferPointer { pg in
                for i in 0..<(d * d) { gTilde[i] = offDiagonal * Double(pg[i]) }
                for i in 0..<d { gTilde[i * d + i] = scale * Double(pg[i * d + i]) }
            }
            sums.gram.withUnsafeMutableBufferPointer { ps in BLAS.axpy(n: d * d, alpha: 1, x: gTilde, y: ps.baseAddress!) }
            guard let reference else { return }
            scratch.with(count: out * d) { delta in
                // Wᵢ − W₁ (out×in), exact in fp64.
                w.withUnsafeBufferPointer { pw in reference.withUnsafeBufferPointer { pr in
                    for i in 0..<(out * d) { delta[i] = Double(pw[i]) - Double(pr[i]) }
                } }
                sums.rhs.withUnsafeMutableBufferPointer { pr in
                    // rhs (d×out) += G̃ᵢ (d×d) · (Wᵢ − W₁)ᵀ (d×out)
                    BLAS.gemm(transA: false, transB: true, m: d, n: out, k: d, alpha: 1, a: gTilde, lda: d,
                              b: delta, ldb: d, beta: 1, c: pr.baseAddress!, ldc: out)
                }
            }
        }
    }

    func finish() throws -> MergeResult {
        let (_, seconds) = try timed {
            let linears = self.linears
            try ParallelLinears.run(count: linears.count, parallel: parallel, cost: { linears[$0].solveCost }) { i in
                let s = linears[i]
                s.result = try RegMean.solve(gram: s.gram, rhs: s.rhs, weightName: s.weightName, outDim: s.outDim, inDim: s.inDim,
                                             alpha: s.alpha, reference: s.reference)
            }
        }
        var claimed: [String: (tensor: Tensor<Float>, entry: MergeReport.TensorEntry)] = [:]
        for s in linears { if let r = s.result { claimed[s.weightName] = (r.0, r.1) } }
        return try fold.finish(claimed: claimed, finishSeconds: seconds)
    }
}
