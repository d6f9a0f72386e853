// TensorKernels: the few elementwise tensor operations the merge loops run over whole models
// (finiteness, fp32 → fp64 widening, zero tensors), written over concrete Float/Double
// buffers. LinAlg's generic Tensor members are not specialised across the module boundary,
// and unspecialised they cost several times more than these loops on a MiniLM-sized model.

import LinAlg

enum TensorKernels {
    /// True when no element is NaN or ±∞.
    static func allFinite(_ t: Tensor<Float>) -> Bool {
        t.withUnsafeBufferPointer { p in
            // x − x is 0 for finite x and NaN otherwise; sixteen independent lanes (a single
            // running sum waited on each add's latency), one branch per 1024 elements.
            guard let base = p.baseAddress else { return true }
            let raw = UnsafeRawPointer(base)
            var start = 0
            while start < p.count {
                let end = min(start + 1024, p.count)
                var lanes = SIMD16<Float>()
                var i = start
                while i + 16 <= end {
                    let x = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                    lanes += x - x
                    i += 16
                }
                var acc = lanes.sum()
                while i < end { acc += p[i] - p[i]; i += 1 }
                if acc != 0 || acc.isNaN { return false }
                start = end
            }
            return true
        }
    }

    /// The fp64 copy of an fp32 tensor.
    static func widened(_ t: Tensor<Float>) -> Tensor<Double> {
        let values = t.withUnsafeBufferPointer { p in [Double](unsafeUninitializedCapacity: p.count) { out, n in
            for i in 0..<p.count { out[i] = Double(p[i]) }
            n = p.count
        } }
        return try! Tensor(shape: t.shape, storage: values)   // same count as t
    }

    static func zerosFloat(_ shape: [Int]) -> Tensor<Float> {
        try! Tensor(shape: shape, storage: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    static func zerosDouble(_ shape: [Int]) -> Tensor<Double> {
        try! Tensor(shape: shape, storage: [Double](repeating: 0, count: shape.reduce(1, *)))
    }
}
