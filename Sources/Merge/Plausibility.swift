// Plausibility: what one contribution (a fine-tuned model and its statistics) must satisfy
// before it may reach a merge. Every check compares the contribution with the pretrained base
// model, never with another contribution, so a bad upload is blamed on the model that made it.
//
// The checks, each with its limit in `PlausibilityLimits` (a round may override them):
//   names and shapes  every tensor has a counterpart in the base of the same shape
//                     (BaseLookup's rule), except heads, which must start with `headsPrefix`;
//                     every base weight the model should carry is present
//   finite            every weight and statistic
//   distance          per tensor ‖θ − θ₀‖ / max(‖θ₀‖, floor·√n) ≤ maxTensorDistance, and over
//                     the whole model ‖θ − θ₀‖ / ‖θ₀‖ ≤ maxModelDistance (fine-tuning moves a
//                     model a few percent; ×1e30 or a swapped architecture does not pass)
//   heads             |entry| ≤ maxHeadValue (heads have no base to compare with)
//   Gram, K-FAC       square of the linear's input (output) width, symmetric within
//                     symmetryTolerance·max|G|, positive semi-definite within psdTolerance:
//                     G + psdTolerance·max(diag G)·I must factor by Cholesky, i.e. no eigenvalue
//                     below −psdTolerance·max(diag G); `num_rows` a positive integer
//   Fisher            parameter's shape, non-negative (a diagonal Fisher is a mean of squares)

import Foundation
import LinAlg

public struct PlausibilityLimits: Sendable, Equatable, Codable {
    public var maxTensorDistance: Double
    public var maxModelDistance: Double
    /// Below this RMS a base tensor counts as this RMS (freshly zeroed biases have ‖θ₀‖ = 0).
    public var distanceFloor: Double
    public var maxHeadValue: Double
    public var symmetryTolerance: Double
    public var psdTolerance: Double
    public var headsPrefix: String

    public init(maxTensorDistance: Double = 3, maxModelDistance: Double = 1, distanceFloor: Double = 0.05,
                maxHeadValue: Double = 1000, symmetryTolerance: Double = 1e-4, psdTolerance: Double = 1e-4,
                headsPrefix: String = HeadsNaming.defaultPrefix) {
        self.maxTensorDistance = maxTensorDistance
        self.maxModelDistance = maxModelDistance
        self.distanceFloor = distanceFloor
        self.maxHeadValue = maxHeadValue
        self.symmetryTolerance = symmetryTolerance
        self.psdTolerance = psdTolerance
        self.headsPrefix = headsPrefix
    }

    public static let standard = PlausibilityLimits()
}

/// One reason a contribution is not plausible; `tensor` names what is at fault.
public struct PlausibilityViolation: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Codable {
        case unexpectedTensor, missingTensor, shape, nonFinite, distance, headValue
        case asymmetric, notPositiveSemidefinite, numRows, negativeFisher, unexpectedStatistic
    }
    public var kind: Kind
    public var tensor: String
    public var detail: String
    public var description: String { "\(tensor): \(detail)" }
}

/// The verdict, with the distances measured (for the log: how close to its limits a contribution came).
public struct PlausibilityResult: Sendable {
    public var violations: [PlausibilityViolation]
    /// ‖θ − θ₀‖ / ‖θ₀‖ over every tensor with a base counterpart.
    public var modelDistance: Double
    /// The largest per-tensor relative distance.
    public var largestTensorDistance: Double
}

public enum Plausibility {
    /// Every violation of `model` (with `statistics`, if any) against `base`; empty when plausible.
    /// The distances of the tensors that were compared are returned too, for the log.
    public static func check(model: NamedTensors, statistics: NamedStatistics?, base: NamedTensors,
                             limits: PlausibilityLimits = .standard) -> PlausibilityResult {
        var violations: [PlausibilityViolation] = []
        func fail(_ kind: PlausibilityViolation.Kind, _ tensor: String, _ detail: String) {
            violations.append(PlausibilityViolation(kind: kind, tensor: tensor, detail: detail))
        }
        var deltaSquared = 0.0, baseSquared = 0.0, largestTensorDistance = 0.0
        var matched = Set<String>()
        for name in model.names {
            let tensor = model[name]!
            guard allFinite(tensor) else { fail(.nonFinite, name, "contains NaN or infinity"); continue }
            guard let (baseName, reference) = BaseLookup.find(name, in: base) else {
                if name.hasPrefix(limits.headsPrefix) {
                    let largest = maxAbs(tensor)
                    if largest > limits.maxHeadValue {
                        fail(.headValue, name, "head entry of magnitude \(format(largest)) exceeds \(format(limits.maxHeadValue))")
                    }
                } else {
                    fail(.unexpectedTensor, name, "not in the base model and not a head ('\(limits.headsPrefix)…')")
                }
                continue
            }
            matched.insert(baseName)
            guard reference.shape == tensor.shape else {
                fail(.shape, name, "shape \(tensor.shape), the base model's '\(baseName)' is \(reference.shape)")
                continue
            }
            let (delta, norm) = distance(tensor, reference)
            deltaSquared += delta * delta
            baseSquared += norm * norm
            let scale = max(norm, limits.distanceFloor * Double(tensor.count).squareRoot())
            let relative = delta / scale
            largestTensorDistance = max(largestTensorDistance, relative)
            if !(relative <= limits.maxTensorDistance) {
                fail(.distance, name, "moved \(format(relative))× its base norm from the base model (limit \(format(limits.maxTensorDistance)))")
            }
        }
        // Every base weight a fine-tuned model carries must be there (the base may hold extra
        // buffers and a pooler the classifier never used; those are only missing if the model
        // has their siblings, so: a base tensor whose module the model has is required).
        let modules = Set(matched.map(module(of:)))
        for name in base.names where !matched.contains(name) && modules.contains(module(of: name)) {
            fail(.missingTensor, name, "the base model has it, this model does not")
        }
        let modelDistance = baseSquared > 0 ? (deltaSquared / baseSquared).squareRoot() : 0
        if !(modelDistance <= limits.maxModelDistance) {
            fail(.distance, "(whole model)", "moved \(format(modelDistance))× the base model's norm (limit \(format(limits.maxModelDistance)))")
        }
        if let statistics { violations += checkStatistics(statistics, model: model, limits: limits) }
        return PlausibilityResult(violations: violations, modelDistance: modelDistance, largestTensorDistance: largestTensorDistance)
    }

    /// Grams, K-FAC factors and Fishers against the weights they belong to.
    static func checkStatistics(_ statistics: NamedStatistics, model: NamedTensors, limits: PlausibilityLimits) -> [PlausibilityViolation] {
        var violations: [PlausibilityViolation] = []
        func fail(_ kind: PlausibilityViolation.Kind, _ tensor: String, _ detail: String) {
            violations.append(PlausibilityViolation(kind: kind, tensor: tensor, detail: detail))
        }
        for name in statistics.tensors.names {
            let tensor = statistics.tensors[name]!
            guard allFinite(tensor) else { fail(.nonFinite, name, "contains NaN or infinity"); continue }
            let parsed = StatisticKey.parse(name)
            if let (linear, kind) = parsed, kind != .fisher {
                let isGram = kind == .gram
                guard let weight = model[linear + ".weight"], weight.rank == 2 else {
                    fail(.unexpectedStatistic, name, "no linear '\(linear).weight' in the model"); continue
                }
                let d = isGram ? weight.shape[1] : weight.shape[0]
                guard tensor.shape == [d, d] else {
                    fail(.shape, name, "shape \(tensor.shape), expected [\(d), \(d)] for '\(linear).weight' \(weight.shape)"); continue
                }
                let key = StatisticKey.rows(ofTensor: name)
                if let text = statistics.metadata[key] {
                    if Int(text).map({ $0 <= 0 }) ?? true { fail(.numRows, key, "'\(text.prefix(40))' is not a positive whole number") }
                } else {
                    fail(.numRows, key, "missing")
                }
                if let violation = symmetricPSD(tensor, name: name, limits: limits) { violations.append(violation) }
            } else if let (parameter, _) = parsed {
                guard let weight = model[parameter] else { fail(.unexpectedStatistic, name, "no parameter '\(parameter)' in the model"); continue }
                guard weight.shape == tensor.shape else {
                    fail(.shape, name, "shape \(tensor.shape), the parameter's is \(weight.shape)"); continue
                }
                let lowest = tensor.storage.min() ?? 0
                if lowest < 0 { fail(.negativeFisher, name, "has a negative entry (\(format(Double(lowest)))); a diagonal Fisher is a mean of squares") }
            } else {
                fail(.unexpectedStatistic, name, "not a .gram, .kfac_out or .fisher statistic")
            }
        }
        return violations
    }

    /// Symmetric within tolerance, and no eigenvalue below −psdTolerance·max(diag): the shifted
    /// matrix must have a Cholesky factor (cheaper than an eigendecomposition by about 6×).
    static func symmetricPSD(_ g: Tensor<Float>, name: String, limits: PlausibilityLimits) -> PlausibilityViolation? {
        let d = g.rows
        var largest = 0.0, maxDiagonal = 0.0, minDiagonal = Double.infinity
        var worstAsymmetry = 0.0
        g.withUnsafeBufferPointer { p in
            for i in 0..<d {
                let diagonal = Double(p[i * d + i])
                maxDiagonal = max(maxDiagonal, diagonal)
                minDiagonal = min(minDiagonal, diagonal)
                for j in i..<d {
                    let a = Double(p[i * d + j]), b = Double(p[j * d + i])
                    largest = max(largest, abs(a), abs(b))
                    worstAsymmetry = max(worstAsymmetry, abs(a - b))
                }
            }
        }
        if worstAsymmetry > limits.symmetryTolerance * largest {
            return PlausibilityViolation(kind: .asymmetric, tensor: name,
                                         detail: "not symmetric: |G − Gᵀ| reaches \(format(worstAsymmetry)) (limit \(format(limits.symmetryTolerance))·max|G| = \(format(limits.symmetryTolerance * largest)))")
        }
        let shift = limits.psdTolerance * max(maxDiagonal, Double.leastNormalMagnitude)
        if d > 0, minDiagonal < -shift {
            return PlausibilityViolation(kind: .notPositiveSemidefinite, tensor: name,
                                         detail: "not positive semi-definite: diagonal entry \(format(minDiagonal)) < 0")
        }
        var shifted = g.converted(to: Double.self)
        shifted.withUnsafeMutableBufferPointer { p in for i in 0..<d { p[i * d + i] += shift } }
        do {
            _ = try CholeskyFactor(shifted)
            return nil
        } catch {
            return PlausibilityViolation(kind: .notPositiveSemidefinite, tensor: name,
                                         detail: "not positive semi-definite: an eigenvalue lies below −\(format(limits.psdTolerance))·max(diag G) = −\(format(shift))")
        }
    }

    /// "encoder.layer.0.attention.self.query.weight" → "encoder.layer.0.attention.self.query".
    static func module(of name: String) -> String {
        guard let dot = name.lastIndex(of: ".") else { return "" }
        return String(name[..<dot])
    }

    /// (‖a − b‖, ‖b‖) in fp64.
    static func distance(_ a: Tensor<Float>, _ b: Tensor<Float>) -> (Double, Double) {
        var delta = 0.0, norm = 0.0
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                for i in 0..<pa.count {
                    let x = Double(pa[i]), y = Double(pb[i])
                    delta += (x - y) * (x - y)
                    norm += y * y
                }
            }
        }
        return (delta.squareRoot(), norm.squareRoot())
    }

    static func maxAbs(_ t: Tensor<Float>) -> Double {
        t.withUnsafeBufferPointer { p in p.reduce(0.0) { max($0, Double(abs($1))) } }
    }

    static func allFinite(_ t: Tensor<Float>) -> Bool { TensorKernels.allFinite(t) }

    static func format(_ x: Double) -> String { String(format: "%.3g", x) }
}
