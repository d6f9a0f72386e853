// MaskStream: the PRG of secure summation — the AES-256-CTR keystream under a pairwise seed,
// read as little-endian UInt64 words. `stream` picks an independent keystream per summand
// (it fills the IV's high 64 bits; the low 64 count blocks), because masking two summands
// with the same words would hand the aggregator their difference.

import COpenSSL

public enum MaskStream {
    /// Words 0..<count of keystream `stream` under `seed` (uniform over UInt64 if AES is a PRF).
    public static func words(seed: PairwiseSeed, stream: UInt64, count: Int) throws -> [UInt64] {
        var words = [UInt64](repeating: 0, count: count)
        guard count > 0 else { return words }
        var iv = [UInt8](repeating: 0, count: 16)
        for b in 0..<8 { iv[b] = UInt8(truncatingIfNeeded: stream >> (56 - 8 * UInt64(b))) }
        guard let context = EVP_CIPHER_CTX_new() else { throw openSSLFailure("make an AES-CTR context") }
        defer { EVP_CIPHER_CTX_free(context) }
        guard EVP_EncryptInit_ex(context, EVP_aes_256_ctr(), nil, seed.bytes, iv) == 1 else { throw openSSLFailure("start AES-256-CTR") }
        // Encrypting zeros in place yields the keystream itself.
        let ok = words.withUnsafeMutableBytes { raw -> Bool in
            let base = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            var offset = 0
            while offset < raw.count {
                let n = min(raw.count - offset, 1 << 30)
                var produced: Int32 = 0
                guard EVP_EncryptUpdate(context, base + offset, &produced, base + offset, Int32(n)) == 1, Int(produced) == n else { return false }
                offset += n
            }
            return true
        }
        guard ok else { throw openSSLFailure("run AES-256-CTR") }
        for i in words.indices { words[i] = UInt64(littleEndian: words[i]) }
        return words
    }
}
