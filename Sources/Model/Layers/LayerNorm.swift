// Layer normalisation over the last dimension: forward and backward over flat buffers.

/// out (N, C) = (inp − mean) · rstd · weight + bias per row, with rstd = 1/√(var + eps)
/// (biased variance, as PyTorch). Saves mean (N) and rstd (N) for the backward.
public func layerNormForward(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                             rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                             weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                             rows n: Int, dim c: Int, eps: Float) {
    for r in 0..<n {
        let x = inp + r * c
        // Statistics in Double: rows of 384–1024 floats lose digits in a Float running sum.
        var s = 0.0
        for i in 0..<c { s += Double(x[i]) }
        let m = s / Double(c)
        var v = 0.0
        for i in 0..<c { let d = Double(x[i]) - m; v += d * d }
        v /= Double(c)
        let rs = Float(1 / (v + Double(eps)).squareRoot())
        let mf = Float(m)
        let o = out + r * c
        for i in 0..<c { o[i] = (x[i] - mf) * rs * weight[i] + bias[i] }
        mean[r] = mf
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
