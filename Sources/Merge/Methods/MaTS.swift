// `mats`: merging by matching models in task parameter subspaces (Tam et al., "Merging by
// Matching Models in Task Parameter Subspaces"): solve Σᵢ wᵢ Cᵢ (θ − θᵢ) = 0 per tensor by
// conjugate gradient, started from another method's merge. Objectives (Cᵢ):
//   regmean     — W ↦ W G̃ᵢ (W out×in, G̃ᵢ the α-scaled, row-normalised Gram, in×in)
//   fisher_diag — θ ↦ Fᵢ ⊙ θ (diagonal Fisher)
//   kfac        — W ↦ Bᵢ W Aᵢ (Aᵢ = Gram/num_rows, in×in; Bᵢ = kfac_out/num_rows, out×out):
//                 no closed form; matrix-free CG, two GEMMs per model per iteration,
//                 preconditioned by B̄⁻¹ · Ā⁻¹ (the Kronecker product nearest Σ Bᵢ ⊗ Aᵢ; exact
//                 when the models share their factors), which cuts the iterations several-fold
//                 against Jacobi. precision float32 (default) applies that preconditioner once,
//                 by whitening the system, and runs the GEMMs in fp32 (MaTSKronecker.swift):
//                 the same iterates as float64's to 1e-4, in half the time.
// Tensors the objective does not cover keep the init method's value. Memory: regmean and
// fisher_diag fold into sums; kfac keeps every model's (Aᵢ, Bᵢ) in fp64, as the operator
// Σ Bᵢ W Aᵢ does not collapse into one pair (≈ 300 MB per MiniLM-L6 model, ≈ 2.5 GB per
// BERT-base), so kfac is bounded: `max_models` (default 16) models per merge, refused
// before the (max_models + 1)th is read (MergeError.tooManyModels; the aggregator refuses
// such a merge file when it reads it).

import LinAlg

public struct MaTS: MergeMethod {
    public var parallel: Bool
    public init(parallel: Bool = true) { self.parallel = parallel }
    public let name = "mats"
    public let summary = "Conjugate gradient on Σ Cᵢ(θ − θᵢ) = 0 (regmean, diagonal-Fisher or K-FAC Cᵢ), from another method's merge."
    public static let initMethods = ["average", "fisher", "regmean", "task_arithmetic", "ties"]
    public let parameters: [ParameterSpec] = [
        ParameterSpec("objective", .choice(["regmean", "fisher_diag", "kfac"]), default: .string("kfac"),
                      doc: "Cᵢ: regmean (W ↦ W G̃ᵢ, needs Grams), fisher_diag (diagonal Fisher), kfac (W ↦ Bᵢ W Aᵢ, needs Grams and <linear>.kfac_out)."),
        ParameterSpec("init", .choice(MaTS.initMethods), default: .string("average"),
                      doc: "The merge CG starts from; tensors the objective does not cover keep its value."),
        ParameterSpec("iterations", .number(0...100_000), default: .number(40),
                      doc: "Maximum CG iterations per tensor. 40 Kronecker-preconditioned iterations leave residuals as small as 100 Jacobi ones did (4 MiniLM-L6: 5e-7–1e-4 against 1e-6–3e-4) in half the time."),
        ParameterSpec("tolerance", .number(0...1), default: .number(1e-8), doc: "Stop when ‖r‖/‖b‖ falls to this (kfac at float32: the whitened system's residual; the report gives the original one)."),
        ParameterSpec("damping", .number(0...1e6), default: .number(0),
                      doc: "Added to each Aᵢ, Bᵢ, G̃ᵢ or Fᵢ as damping × (its mean diagonal) × I."),
        ParameterSpec("precision", .choice(["float32", "float64"]), default: .string("float32"),
                      doc: "objective kfac with the Kronecker preconditioner: float32 runs CG on the system whitened by it, GEMMs in fp32 and vectors in fp64 — the float64 path's iterates (to 1e-4 on well-conditioned systems; on 4 MiniLM-L6s after 40 iterations 0.02 % median, 0.8 % at most, in the last layer's ill-conditioned feed-forward) in half the time; float64 applies the preconditioner at every iteration, all in fp64."),
        ParameterSpec("preconditioner", .choice(["auto", "kronecker", "jacobi", "none"]), default: .string("auto"),
                      doc: "kronecker: (Σ Bᵢ)⁻¹ R (Σ Aᵢ)⁻¹, each sum Cholesky-factored once (with jitter where singular); exact when the models share their factors up to scale. jacobi: divide by the operator's diagonal (exact for fisher_diag). auto: kronecker for kfac and regmean, jacobi for fisher_diag."),
        ParameterSpec("kfac_fallback", .choice(["init", "fisher_diag"]), default: .string("init"),
                      doc: "objective kfac: tensors without Gram+kfac_out keep the init value, or use the diagonal Fisher where present."),
        ParameterSpec("alpha", .perTensorNumber(0...1), default: .number(0.9), doc: "RegMean's α (objective regmean, and init regmean)."),
        ParameterSpec("gram_normalize", .choice(["mean", "sum"]), default: .string("mean"), doc: "As for regmean."),
        ParameterSpec("fisher_floor", .number(0...1e30), default: .number(1e-6), doc: "init fisher's floor."),
        ParameterSpec("max_models", .number(1...100_000), default: .number(Double(MaTS.defaultMaxModels)),
                      doc: "objective kfac: the most models one merge may take; each keeps its K-FAC factors in memory (≈ 300 MB per MiniLM-L6, ≈ 2.5 GB per BERT-base model)."),
        CommonParameters.lambda(doc: "init task_arithmetic/ties scale."),
        ParameterSpec("density", .number(0...1), default: .number(0.2), doc: "init ties density."),
    ]
    public let needsBase = false
    /// objective kfac's default `max_models`: 16 MiniLM-L6 models' factors are ≈ 4.8 GB.
    public static let defaultMaxModels = 16

    public func maxModels(_ parameters: MergeParameters) -> Int? {
        guard (parameters.string("objective") ?? "kfac") == "kfac" else { return nil }
        return Int(parameters.number("max_models") ?? Double(Self.defaultMaxModels))
    }

    private func initChoice(_ parameters: MergeParameters) throws -> (any MergeMethod, MergeParameters) {
        let initMethod = try MethodRegistry.method(named: parameters.string("init") ?? "average")
        let known = Set(initMethod.allParameters.map(\.name))
        return (initMethod, try initMethod.validate(parameters: parameters.values.filter { known.contains($0.key) }))
    }

    public func requiredStatistics(_ parameters: MergeParameters) -> Set<StatisticKind> {
        var kinds: Set<StatisticKind> = (try? initChoice(parameters)).map { $0.0.requiredStatistics($0.1) } ?? []
        switch parameters.string("objective") ?? "kfac" {
        case "regmean": kinds.insert(.gram)
        case "fisher_diag": kinds.insert(.fisher)
        default:
            kinds.formUnion([.gram, .kfacOut])
            if parameters.string("kfac_fallback") == "fisher_diag" { kinds.insert(.fisher) }
        }
        return kinds
    }

    public func makeAccumulator(validated parameters: MergeParameters, base: NamedTensors?) throws -> any MergeAccumulator {
        let (initMethod, initParameters) = try initChoice(parameters)
        if initMethod.needsBase && base == nil { throw MergeError.baseModelRequired(method: "mats (init \(initMethod.name))") }
        return MaTSAccumulator(initial: try initMethod.makeAccumulator(validated: initParameters, base: base),
                               parameters: parameters, parallel: parallel, maxModels: maxModels(parameters))
    }
}

final class MaTSAccumulator: MergeAccumulator {
    /// One tensor's system Σ wᵢCᵢ θ = Σ wᵢCᵢθᵢ, with the operator's streaming state.
    final class System: @unchecked Sendable {
        enum Operator {
            /// θ ↦ d ⊙ θ, d = Σ wᵢFᵢ.
            case diagonal([Double])
            /// W ↦ W S, S = Σ wᵢG̃ᵢ (in×in).
            case rightGram(Tensor<Double>)
            /// W ↦ Σ wᵢ Bᵢ W Aᵢ over the models' (Aᵢ in×in, wᵢBᵢ out×out), kept per model.
            case kronecker([(a: Tensor<Double>, b: Tensor<Double>)])
        }
        let name: String
        let linear: String
        let shape: [Int]
        let objective: String
        let alpha: Double
        var op: Operator
        var rhs: [Double]
        var result: (Tensor<Float>, Solution)?
        init(name: String, linear: String, shape: [Int], objective: String, alpha: Double, op: Operator) {
            self.name = name; self.linear = linear; self.shape = shape; self.objective = objective; self.alpha = alpha
            self.op = op; rhs = [Double](repeating: 0, count: shape.reduce(1, *))
        }
        var rows: Int { shape.count == 2 ? shape[0] : 1 }
        var cols: Int { shape.count == 2 ? shape[1] : shape.reduce(1, *) }
    }

    private let initial: any MergeAccumulator
    private let parameters: MergeParameters
    private let parallel: Bool
    private let objective: String
    private let damping: Double
    private let normalizeByRows: Bool
    private let headsPrefix: String?
    private var systems: [System] = []
    private var modelCount = 0
    private var addSeconds = 0.0
    /// objective kfac: the most models whose factors this accumulator keeps (nil: no bound).
    private let maxModels: Int?

    init(initial: any MergeAccumulator, parameters: MergeParameters, parallel: Bool, maxModels: Int?) {
        self.initial = initial
        self.parameters = parameters
        self.parallel = parallel
        self.maxModels = maxModels
        self.objective = parameters.string("objective") ?? "kfac"
        self.damping = parameters.number("damping") ?? 0
        self.normalizeByRows = parameters.string("gram_normalize") != "sum"
        self.headsPrefix = parameters.string("heads") == "average" ? nil : parameters.string("heads_prefix")
    }

    func add(model: NamedTensors, statistics: NamedStatistics, weight: Double, name: String) throws {
        let modelName = name.isEmpty ? "model\(modelCount)" : name
        // Refused before anything is read: one more model's factors would exceed the bound.
        if let limit = maxModels, modelCount >= limit {
            throw MergeError.tooManyModels(method: "mats", model: modelName, limit: limit,
                                           reason: "objective kfac keeps every model's K-FAC factors in memory; raise max_models if memory allows, or use objective regmean or fisher_diag, which fold into sums")
        }
        let (_, seconds) = try timed {
            let candidates = systems.isEmpty ? try claim(model: model, statistics: statistics, modelName: modelName) : systems
            // Statistics are checked, then the init method checks and folds the model; only then
            // do MaTS's own sums change, so a rejected model leaves no trace.
            let inputs = try candidates.map { try prepare($0, model: model, statistics: statistics, weight: weight, modelName: modelName) }
            try initial.add(model: model, statistics: statistics, weight: weight, name: name)
            if systems.isEmpty { systems = candidates }
            let systems = self.systems
            try ParallelLinears.run(count: systems.count, parallel: parallel) { i in
                Self.fold(systems[i], inputs[i])
            }
        }
        modelCount += 1
        addSeconds += seconds
    }

    /// Decides from the first model which tensors the objective covers.
    private func claim(model: NamedTensors, statistics: NamedStatistics, modelName: String) throws -> [System] {
        var systems: [System] = []
        let fallbackFisher = parameters.string("kfac_fallback") == "fisher_diag"
        for n in model.names {
            if let prefix = headsPrefix, n.hasPrefix(prefix) { continue }
            let shape = model[n]!.shape
            let linear = n.hasSuffix(".weight") ? String(n.dropLast(".weight".count)) : n
            let isMatrix = shape.count == 2 && n.hasSuffix(".weight")
            let alpha = parameters.number("alpha", forTensor: n) ?? 0.9
            func make(_ objective: String) -> System {
                let count = shape.reduce(1, *)
                switch objective {
                case "fisher_diag": return System(name: n, linear: linear, shape: shape, objective: objective, alpha: alpha, op: .diagonal([Double](repeating: 0, count: count)))
                case "regmean": return System(name: n, linear: linear, shape: shape, objective: objective, alpha: alpha, op: .rightGram(TensorKernels.zerosDouble([shape[1], shape[1]])))
                default: return System(name: n, linear: linear, shape: shape, objective: objective, alpha: alpha, op: .kronecker([]))
                }
            }
            switch objective {
            case "fisher_diag":
                if statistics.fisher(forParameter: n) != nil { systems.append(make("fisher_diag")) }
            case "regmean":
                if isMatrix && statistics.hasGram(forLinear: linear) { systems.append(make("regmean")) }
            default:
                if isMatrix && statistics.hasGram(forLinear: linear) && statistics.tensors.contains(StatisticKey.kfacOut(linear)) {
                    systems.append(make("kfac"))
                } else if fallbackFisher && statistics.fisher(forParameter: n) != nil {
                    systems.append(make("fisher_diag"))
                }
            }
        }
        guard !systems.isEmpty else {
            let key = objective == "fisher_diag" ? "<param>.fisher" : objective == "regmean" ? "<linear>.gram" : "<linear>.gram and <linear>.kfac_out"
            throw MergeError.missingStatistic(model: modelName, key: key + " (objective \(objective) covers no tensor)")
        }
        return systems
    }

    /// M + damping · mean(diag M) · I, in place (M n×n).
    private func damp(_ m: inout Tensor<Double>) {
        guard damping > 0 else { return }
        let shift = damping * m.meanDiagonal
        for i in 0..<m.rows { m[i, i] += shift }
    }

    private func gramMatrix(_ s: System, statistics: NamedStatistics, modelName: String, alpha: Double) throws -> Tensor<Double> {
        let d = s.cols
        let g = try statistics.requiredGram(forLinear: s.linear, dimension: d, weight: s.name, model: modelName)
        var a = TensorKernels.widened(g.sum)
        let scale = normalizeByRows ? 1 / Double(g.numRows) : 1
        a.withUnsafeMutableBufferPointer { p in
            for i in 0..<d { for j in 0..<d { p[i * d + j] *= scale * (i == j ? 1 : alpha) } }
        }
        damp(&a)
        return a
    }

    /// One model's checked contribution to one system: θᵢ (fp64) and its wᵢCᵢ.
    struct Input {
        enum Matrices {
            case fisher([Double])                               // wᵢ(Fᵢ + damping)
            case gram(Tensor<Double>)                           // wᵢG̃ᵢ (in×in)
            case kfac(a: Tensor<Double>, b: Tensor<Double>)     // Aᵢ (in×in), wᵢBᵢ (out×out)
        }
        let theta: Tensor<Double>
        let matrices: Matrices
    }

    /// Checks and reads what model `modelName` contributes to `s`; changes nothing.
    private func prepare(_ s: System, model: NamedTensors, statistics: NamedStatistics, weight: Double, modelName: String) throws -> Input {
        guard let theta = model[s.name] else { throw MergeError.missingTensor(model: modelName, tensor: s.name) }
        guard theta.shape == s.shape else { throw MergeError.shapeMismatch(model: modelName, tensor: s.name, expected: s.shape, actual: theta.shape) }
        let m = s.rows
        switch s.op {
        case .diagonal:
            guard let f = statistics.fisher(forParameter: s.name) else { throw MergeError.missingStatistic(model: modelName, key: StatisticKey.fisher(s.name)) }
            guard f.shape == theta.shape else { throw MergeError.shapeMismatch(model: modelName, tensor: StatisticKey.fisher(s.name), expected: theta.shape, actual: f.shape) }
            guard TensorKernels.allFinite(f) else { throw MergeError.nonFinite(model: modelName, tensor: StatisticKey.fisher(s.name)) }
            let values = f.withUnsafeBufferPointer { p -> [Double] in
                var mean = 0.0
                for x in p { mean += Double(x) }
                let shift = damping * mean / Double(max(p.count, 1))
                return p.map { weight * (Double($0) + shift) }
            }
            return Input(theta: TensorKernels.widened(theta), matrices: .fisher(values))
        case .rightGram:
            var g = try gramMatrix(s, statistics: statistics, modelName: modelName, alpha: s.alpha)
            g.storage = g.storage.map { $0 * weight }
            return Input(theta: TensorKernels.widened(theta), matrices: .gram(g))
        case .kronecker:
            let a = try gramMatrix(s, statistics: statistics, modelName: modelName, alpha: 1)
            guard let k = try naming(model: modelName, { try statistics.kfacOut(forLinear: s.linear) }) else {
                throw MergeError.missingStatistic(model: modelName, key: StatisticKey.kfacOut(s.linear))
            }
            guard k.sum.shape == [m, m] else {
                throw MergeError.shapeMismatch(model: modelName, tensor: StatisticKey.kfacOut(s.linear), expected: [m, m], actual: k.sum.shape)
            }
            guard TensorKernels.allFinite(k.sum) else { throw MergeError.nonFinite(model: modelName, tensor: StatisticKey.kfacOut(s.linear)) }
            var b = TensorKernels.widened(k.sum)
            b.storage = b.storage.map { $0 / Double(k.numRows) }
            damp(&b)
            b.storage = b.storage.map { $0 * weight }
            return Input(theta: TensorKernels.widened(theta), matrices: .kfac(a: a, b: b))
        }
    }

    /// Adds one checked input to its system's operator and right-hand side.
    private static func fold(_ s: System, _ input: Input) {
        let (m, n) = (s.rows, s.cols)
        switch (s.op, input.matrices) {
        case (.diagonal(var d), .fisher(let f)):
            input.theta.withUnsafeBufferPointer { pt in
                for i in 0..<d.count { d[i] += f[i]; s.rhs[i] += f[i] * pt[i] }
            }
            s.op = .diagonal(d)
        case (.rightGram(var sum), .gram(let g)):
            try! axpy(1, g, &sum)                                   // same shape by construction
            s.op = .rightGram(sum)
            // rhs (m×n) += Wᵢ (m×n) · wG̃ᵢ (n×n)
            input.theta.withUnsafeBufferPointer { pw in g.withUnsafeBufferPointer { pg in s.rhs.withUnsafeMutableBufferPointer { pr in
                BLAS.gemm(m: m, n: n, k: n, alpha: 1, a: pw.baseAddress!, lda: n, b: pg.baseAddress!, ldb: n, beta: 1, c: pr.baseAddress!, ldc: n)
            } } }
        case (.kronecker(var pairs), .kfac(let a, let b)):
            // rhs += (wBᵢ) Wᵢ Aᵢ: T = Wᵢ Aᵢ (m×n), rhs += wBᵢ T.
            let t = try! matmul(input.theta, a)                     // (m×n)·(n×n)
            t.withUnsafeBufferPointer { pt in b.withUnsafeBufferPointer { pb in s.rhs.withUnsafeMutableBufferPointer { pr in
                BLAS.gemm(m: m, n: n, k: m, alpha: 1, a: pb.baseAddress!, lda: m, b: pt.baseAddress!, ldb: n, beta: 1, c: pr.baseAddress!, ldc: n)
            } } }
            pairs.append((a, b))
            s.op = .kronecker(pairs)
        default:
            preconditionFailure("MaTS input kind does not match its system \(s.name)")
        }
    }

    func finish() throws -> MergeResult {
        var result = try initial.finish()
        let iterations = Int(parameters.number("iterations") ?? 40)
        let tolerance = parameters.number("tolerance") ?? 1e-8
        let preconditioner = parameters.string("preconditioner") ?? "auto"
        let precision = parameters.string("precision") ?? "float32"
        let initTensors = result.tensors
        let (_, seconds) = try timed {
            let systems = self.systems
            try ParallelLinears.run(count: systems.count, parallel: parallel, cost: { Double(systems[$0].rows * systems[$0].cols) * Double(systems[$0].rows + systems[$0].cols) }) { i in
                let s = systems[i]
                let x0 = initTensors[s.name]!.storage.map(Double.init)
                let cg = Self.solve(s, initial: x0, iterations: iterations, tolerance: tolerance, preconditioner: preconditioner,
                                    precision: precision)
                s.result = (try Tensor(shape: s.shape, storage: cg.cg.x.map(Float.init)), cg)
            }
        }
        for s in systems {
            guard let (tensor, cg) = s.result else { continue }
            result.tensors.set(s.name, tensor)
            var entry = MergeReport.TensorEntry(name: s.name, rule: "mats_" + s.objective, solvePath: "cg",
                                                note: "from \(parameters.string("init") ?? "average")")
            entry.iterations = cg.cg.iterations
            entry.initialResidual = cg.initialResidual
            entry.finalResidual = cg.finalResidual
            entry.converged = cg.cg.converged
            if let index = result.report.tensors.firstIndex(where: { $0.name == s.name }) { result.report.tensors[index] = entry }
        }
        var totals: [String: Int] = [:]
        for e in result.report.tensors { totals[e.rule, default: 0] += 1 }
        result.report.totals = totals
        result.report.method = "mats"
        result.report.parameters = parameters.values.mapValues(CommonParameters.reportString)
        result.report.addSeconds += addSeconds
        result.report.finishSeconds += seconds
        return result
    }

    /// One tensor's CG outcome, with ‖b − Ax‖/‖b‖ in the system's own coordinates at the
    /// start and the end.
    struct Solution {
        var cg: ConjugateGradientResult
        var initialResidual: Double
        var finalResidual: Double
    }

    /// CG on one tensor's system from `initial`; the operator is applied matrix-free.
    static func solve(_ s: System, initial: [Double], iterations: Int, tolerance: Double, preconditioner choice: String,
                      precision: String = "float32") -> Solution {
        if case .kronecker(let pairs) = s.op, precision == "float32", choice == "auto" || choice == "kronecker",
           let whitened = WhitenedKroneckerSystem(pairs: pairs, rows: s.rows, cols: s.cols) {
            let first = whitened.solve(rhs: s.rhs, initial: initial, iterations: iterations, tolerance: tolerance)
            guard !first.cg.converged, first.cg.iterations < iterations else { return first }
            // CG broke down (p·Ap ≤ 0: fp32 rounding along a near-null direction of the
            // whitened operator); the fp64 path takes the iterations left from where it stopped.
            var rest = solveFloat64(s, initial: first.cg.x, iterations: iterations - first.cg.iterations, tolerance: tolerance,
                                    preconditioner: choice)
            rest.iterations += first.cg.iterations
            return Solution(cg: rest, initialResidual: first.initialResidual, finalResidual: rest.finalRelativeResidual)
        }
        let cg = solveFloat64(s, initial: initial, iterations: iterations, tolerance: tolerance, preconditioner: choice)
        return Solution(cg: cg, initialResidual: cg.initialRelativeResidual, finalResidual: cg.finalRelativeResidual)
    }

    /// A floor of 1e-3 × the mean diagonal on the Kronecker preconditioner's factors bounds how
    /// much its inverse amplifies their near-null directions (LayerNorm inputs never vary along
    /// 1; the last layer sees gradients at CLS only): at 1e-6 CG broke down (p·Ap ≤ 0) on 6 of a
    /// MiniLM's 38 systems, at 1e-3 on none, with the same residuals elsewhere.
    static let kroneckerFloor = 1e-3

    /// The fp64 path: the operator in fp64, preconditioned at every iteration.
    static func solveFloat64(_ s: System, initial: [Double], iterations: Int, tolerance: Double, preconditioner choice: String) -> ConjugateGradientResult {
        let (m, n) = (s.rows, s.cols)
        var diagonal = [Double](repeating: 0, count: m * n)
        let apply: LinearOperator
        switch s.op {
        case .diagonal(let d):
            diagonal = d
            apply = { x, y in for i in 0..<d.count { y[i] = d[i] * x[i] } }
        case .rightGram(let g):
            for r in 0..<m { for c in 0..<n { diagonal[r * n + c] = g[c, c] } }
            apply = { x, y in
                // Y (m×n) = X (m×n) · S (n×n)
                g.withUnsafeBufferPointer { pg in
                    BLAS.gemm(m: m, n: n, k: n, alpha: 1, a: x.baseAddress!, lda: n, b: pg.baseAddress!, ldb: n, beta: 0, c: y.baseAddress!, ldc: n)
                }
            }
        case .kronecker(let pairs):
            for (a, b) in pairs { for r in 0..<m { for c in 0..<n { diagonal[r * n + c] += b[r, r] * a[c, c] } } }
            var t = [Double](repeating: 0, count: m * n)
            apply = { x, y in
                for i in 0..<(m * n) { y[i] = 0 }
                t.withUnsafeMutableBufferPointer { pt in
                    for (a, b) in pairs {
                        // T (m×n) = X (m×n) · Aᵢ (n×n); Y += wBᵢ (m×m) · T
                        a.withUnsafeBufferPointer { pa in
                            BLAS.gemm(m: m, n: n, k: n, alpha: 1, a: x.baseAddress!, lda: n, b: pa.baseAddress!, ldb: n, beta: 0, c: pt.baseAddress!, ldc: n)
                        }
                        b.withUnsafeBufferPointer { pb in
                            BLAS.gemm(m: m, n: n, k: m, alpha: 1, a: pb.baseAddress!, lda: m, b: UnsafePointer(pt.baseAddress!), ldb: n, beta: 1, c: y.baseAddress!, ldc: n)
                        }
                    }
                }
            }
        }
        let inverseDiagonal = diagonal.map { $0 > 0 ? 1 / $0 : 1 }
        let jacobi: LinearOperator? = choice == "none" ? nil : { r, z in for i in 0..<inverseDiagonal.count { z[i] = inverseDiagonal[i] * r[i] } }
        let kronecker = choice == "kronecker" || (choice == "auto" && s.objective != "fisher_diag")
        guard kronecker, let factored = kroneckerPreconditioner(s.op, rows: m, cols: n) else {
            return conjugateGradient(apply: apply, rhs: s.rhs, initial: initial, preconditioner: jacobi,
                                     tolerance: tolerance, maxIterations: iterations)
        }
        let first = conjugateGradient(apply: apply, rhs: s.rhs, initial: initial, preconditioner: factored,
                                      tolerance: tolerance, maxIterations: iterations)
        // CG stopped early without converging: p·Ap ≤ 0, the operator is singular along the
        // search direction — rank-deficient Bᵢ (last layer's feed-forward sees gradients at CLS
        // only; LayerNorm's inputs never vary along 1) whose near-null directions the Kronecker
        // inverse amplifies. Jacobi, which amplifies nothing, takes over for the iterations left.
        guard !first.converged, first.iterations < iterations else { return first }
        var rest = conjugateGradient(apply: apply, rhs: s.rhs, initial: first.x, preconditioner: jacobi,
                                     tolerance: tolerance, maxIterations: iterations - first.iterations)
        rest.iterations += first.iterations
        rest.residualHistory = first.residualHistory + rest.residualHistory.dropFirst()
        return rest
    }

    /// Z = B⁻¹ R A⁻¹, the inverse of B ⊗ A, the Kronecker product nearest the operator
    /// Σ wᵢBᵢ ⊗ Aᵢ (for regmean B = I and A = Σ wᵢG̃ᵢ: exact). Symmetric positive definite, so CG stays CG; it changes the path to the solution,
    /// not the solution. A singular sum is factored with jitter (CholeskyFactor.damped); nil
    /// (Jacobi stays) for the diagonal operator or when no jitter helps.
    static func kroneckerPreconditioner(_ op: System.Operator, rows m: Int, cols n: Int) -> LinearOperator? {
        let left: CholeskyFactor?, right: CholeskyFactor
        switch op {
        case .diagonal: return nil
        case .rightGram(let g):
            left = nil
            guard let f = CholeskyFactor.damped(g) else { return nil }
            right = f
        case .kronecker(let pairs):
            guard let (fa, fb) = kroneckerFactors(pairs) else { return nil }
            left = fb; right = fa
        }
        return { r, z in
            z.baseAddress!.update(from: r.baseAddress!, count: m * n)
            left?.solveInPlace(left: z.baseAddress!, columns: n)
            right.solveInPlace(right: z.baseAddress!, rows: m)
        }
    }

    /// The Cholesky factors of A and B, B ⊗ A the Kronecker product nearest Σ Bᵢ ⊗ Aᵢ with the
    /// `kroneckerFloor` added to each diagonal: the preconditioner both precisions use (fp64
    /// solves with them every iteration; float32 whitens the system by them once). nil when
    /// no jitter makes one factor.
    static func kroneckerFactors(_ pairs: [(a: Tensor<Double>, b: Tensor<Double>)]) -> (a: CholeskyFactor, b: CholeskyFactor)? {
        guard var (a, b) = nearestKroneckerProduct(pairs) else { return nil }
        let (shiftA, shiftB) = (kroneckerFloor * a.meanDiagonal, kroneckerFloor * b.meanDiagonal)
        for i in 0..<a.rows { a[i, i] += shiftA }
        for i in 0..<b.rows { b[i, i] += shiftB }
        guard let fa = CholeskyFactor.damped(a), let fb = CholeskyFactor.damped(b) else { return nil }
        return (fa, fb)
    }

    /// B ⊗ A nearest Σ Bᵢ ⊗ Aᵢ in the Frobenius norm (Van Loan & Pitsianis), by alternating
    /// least squares from B = Σ Bᵢ: A ∝ Σ ⟨B, Bᵢ⟩ Aᵢ, then B ∝ Σ ⟨A, Aᵢ⟩ Bᵢ. Plain sums weigh a
    /// model whose Bᵢ is tiny (a confident model: small gradients) as much as any other in A;
    /// these weights follow each term's share of the operator. Inner products of positive
    /// semidefinite matrices are ≥ 0, so A and B stay positive semidefinite.
    static func nearestKroneckerProduct(_ pairs: [(a: Tensor<Double>, b: Tensor<Double>)]) -> (a: Tensor<Double>, b: Tensor<Double>)? {
        guard let first = pairs.first else { return nil }
        func combination(_ terms: [Tensor<Double>], _ weights: [Double]) -> Tensor<Double> {
            let top = weights.max() ?? 0
            var out = Tensor<Double>(shape: terms[0].shape)
            for (t, w) in zip(terms, weights) where top > 0 { try! axpy(w / top, t, &out) }   // same shapes by construction
            return out
        }
        let aTerms = pairs.map(\.a), bTerms = pairs.map(\.b)
        var b = combination(bTerms, [Double](repeating: 1, count: pairs.count))
        var a = first.a
        for _ in 0..<3 {
            a = combination(aTerms, bTerms.map { max(try! dot(b, $0), 0) })
            b = combination(bTerms, aTerms.map { max(try! dot(a, $0), 0) })
        }
        return (a, b)
    }
}
