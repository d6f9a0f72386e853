// Summands: the agent side of a merge run on sums. From one model, its statistics and its
// merge weight, the terms whose sums over agents are all that average, fisher and regmean
// need (issue 13; DESIGN.md §8). Weights and gram_normalize are applied here, by the agent,
// and the model passes the same checks the aggregator would run in the clear.

import LinAlg

public enum SumMerge {
    /// The methods that need only sums. mats, ties and task_arithmetic need per-model terms.
    public static let methods: [String] = ["average", "fisher", "regmean"]

    public static func summands(method name: String, parameters raw: [String: MergeValue], model: NamedTensors,
                                statistics: NamedStatistics, weight: Double, name modelName: String) throws -> AgentSummands {
        guard methods.contains(name) else { throw MergeError.notSummable(method: name, summable: methods) }
        let parameters = try MethodRegistry.method(named: name).validate(parameters: raw)
        let fold = ModelFold(method: name, parameters: parameters)
        let checked = try fold.check(model: model, statistics: statistics, weight: weight, name: modelName)
        let normalizeByRows = parameters.string("gram_normalize") != "sum"

        var specs: [SummandSpec] = []
        var values: [[Double]] = []
        var kept = NamedTensors()
        func add(_ tensor: String, _ role: SummandRole, _ v: [Double], gram: String? = nil) {
            specs.append(SummandSpec(tensor: tensor, role: role, count: v.count, gram: gram)); values.append(v)
        }
        var gramsSent: Set<String> = []
        // fisher_normalize l2: the agent divides its own Fisher by its L2 norm over every
        // Fisher-merged tensor, as the clear FisherMerge does per model.
        var fisherScale = 1.0
        if name == "fisher", parameters.string("fisher_normalize") == "l2" {
            var squares = 0.0
            for n in model.names where !fold.isSeparateHead(n) {
                if let f = statistics.fisher(forParameter: n) { for v in f.storage { squares += Double(v) * Double(v) } }
            }
            if squares > 0 { fisherScale = 1 / squares.squareRoot() }
        }

        for n in model.names {
            let theta = model[n]!
            if fold.isSeparateHead(n) {
                if fold.headsMode == .keep { kept.set(n, theta); continue }
                // per_label: the plain average (rows no agent saw) and the per-row sums.
                let counts = checked.labelCounts!
                add(n, .weighted, scaled(theta, by: weight))
                var rows = scaled(theta, by: weight)
                let cols = theta.cols
                for r in 0..<theta.rows where counts[r] == 0 { for c in 0..<cols { rows[r * cols + c] = 0 } }
                add(n, .labelRows, rows)
                add(n, .labelRowWeights, (0..<theta.rows).map { counts[$0] > 0 ? weight : 0 })
                continue
            }
            let linear = n.hasSuffix(".weight") ? String(n.dropLast(".weight".count)) : nil
            if name == "regmean", let linear, statistics.hasGram(forLinear: linear) {
                guard theta.shape.count == 2 else {
                    throw MergeError.shapeMismatch(model: checked.name, tensor: n, expected: [theta.shape.first ?? 0, theta.shape.last ?? 0], actual: theta.shape)
                }
                let (out, d) = (theta.shape[0], theta.shape[1])
                let g = try statistics.requiredGram(forLinear: linear, dimension: d, weight: n, model: checked.name)
                let s = weight * (normalizeByRows ? 1 / Double(g.numRows) : 1)
                let sG = scaled(g.sum, by: s)
                if gramsSent.insert(g.storedUnder).inserted { add(g.storedUnder, .gram, try SymmetricPacking.pack(sG, dimension: d)) }
                // s G Wᵀ (d×out) = (sG, d×d) · (W, out×d)ᵀ
                var gw = [Double](repeating: 0, count: d * out)
                let w = TensorKernels.widened(theta)
                sG.withUnsafeBufferPointer { pg in
                    w.withUnsafeBufferPointer { pw in
                        gw.withUnsafeMutableBufferPointer { pr in
                            BLAS.gemm(transA: false, transB: true, m: d, n: out, k: d, alpha: 1, a: pg.baseAddress!, lda: d,
                                      b: pw.baseAddress!, ldb: d, beta: 0, c: pr.baseAddress!, ldc: out)
                        }
                    }
                }
                var dw = [Double](repeating: 0, count: d * out)
                for j in 0..<d { for o in 0..<out { dw[j * out + o] = sG[j * d + j] * Double(theta.storage[o * d + j]) } }
                add(n, .gramTimesWeight, gw, gram: g.storedUnder)
                add(n, .diagTimesWeight, dw, gram: g.storedUnder)
                continue
            }
            if name == "fisher", let f = statistics.fisher(forParameter: n) {
                guard f.shape == theta.shape else {
                    throw MergeError.shapeMismatch(model: checked.name, tensor: StatisticKey.fisher(n), expected: theta.shape, actual: f.shape)
                }
                guard TensorKernels.allFinite(f) else { throw MergeError.nonFinite(model: checked.name, tensor: StatisticKey.fisher(n)) }
                let wf = scaled(f, by: weight * fisherScale)
                add(n, .fisherTimesWeight, zip(wf, theta.storage).map { $0 * Double($1) })
                add(n, .fisher, wf)
            }
            add(n, .weighted, scaled(theta, by: weight))
        }
        if name == "regmean", gramsSent.isEmpty {
            throw MergeError.missingStatistic(model: checked.name, key: "<linear>.gram (no linear has a Gram)")
        }
        if name == "fisher", !specs.contains(where: { $0.role == .fisher }) {
            throw MergeError.missingStatistic(model: checked.name, key: "<param>.fisher (no tensor has a Fisher)")
        }
        // A kept head's slot has 0 rows: each agent's head has its own label count (as in the
        // clear heads: keep), and the layout must be the same for every member.
        let layout = SumLayout(method: name, tensors: model.names.map { n in
            var shape = model[n]!.shape
            if fold.headsMode == .keep && fold.isSeparateHead(n) && !shape.isEmpty { shape[0] = 0 }
            return TensorSlot(name: n, shape: shape)
        }, summands: specs)
        return AgentSummands(layout: layout, values: values, keptHeads: kept)
    }

    /// x · s, widened to fp64.
    private static func scaled(_ x: Tensor<Float>, by s: Double) -> [Double] {
        x.withUnsafeBufferPointer { p in (0..<p.count).map { s * Double(p[$0]) } }
    }
}
