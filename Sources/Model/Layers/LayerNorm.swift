// Layer normalisation over the last dimension: forward and backward over flat buffers.

/// out (N, C) = (inp − mean) · rstd · weight + bias per row, with rstd = 1/√(var + eps)
/// (biased variance, as PyTorch). Saves mean (N) and rstd (N) for the backward.
public func layerNormForward(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                             rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                             weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                             rows n: Int, dim c: Int, eps: Float) {
    for r in 0..<n {
        let x = inp + r * c
        // Two passes with one Float partial sum per lane (C/4 terms each, so rounding stays
        // near 1e-7 relative) — vectorised, unlike a Double running sum.
        let m = lanesSum(x, c) { $0 } / Float(c)
        let v = lanesSum(x, c) { let d = $0 - m; return d * d } / Float(c)
        let rs = 1 / (v + eps).squareRoot()
        let o = out + r * c
        for i in 0..<c { o[i] = (x[i] - m) * rs * weight[i] + bias[i] }
        mean[r] = m
        rstd[r] = rs
    }
}

/// Backward of `layerNormForward`; accumulates into dinp (N, C), dweight (C), dbias (C).
/// With x̂ = (x − mean)·rstd and g = dout·weight: dx = rstd · (g − mean(g) − x̂ · mean(g·x̂)).
public func layerNormBackward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?,
                              dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                              inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                              mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                              rows n: Int, dim c: Int) {
    for r in 0..<n {
        let x = inp + r * c, dy = dout + r * c, dx = dinp + r * c
        let m = mean[r], rs = rstd[r]
        var gMean: Float = 0, gxMean: Float = 0
        for i in 0..<c {
            let xh = (x[i] - m) * rs
            let g = dy[i] * weight[i]
            gMean += g
            gxMean += g * xh
        }
        gMean /= Float(c)
        gxMean /= Float(c)
        for i in 0..<c {
            let xh = (x[i] - m) * rs
            if let dbias { dbias[i] += dy[i] }
            if let dweight { dweight[i] += dy[i] * xh }
            dx[i] += rs * (dy[i] * weight[i] - gMean - xh * gxMean)
        }
    }
}
