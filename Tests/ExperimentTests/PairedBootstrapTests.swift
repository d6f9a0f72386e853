// PairedBootstrap against closed forms: degenerate pairs give a point interval, a two-item
// difference has the exact three-point resampling law, the interval's width follows the
// normal approximation sqrt(var/n), pooling k seeds divides the variance by k, and the
// quantile interpolates like numpy's default.

@testable import Experiment
import LinAlg
import XCTest

final class PairedBootstrapTests: XCTestCase {
    typealias Stratum = PairedBootstrap.Stratum

    func testIdenticalModelsGiveZeroAndOppositeModelsGiveOne() {
        let items = (0..<50).map { $0 % 3 == 0 }
        let same = PairedBootstrap.interval(seeds: [[Stratum(a: items, b: items)]], resamples: 200)
        XCTAssertEqual([same.estimate, same.lower, same.upper], [0, 0, 0])
        let opposite = PairedBootstrap.interval(seeds: [[Stratum(a: [Bool](repeating: true, count: 9), b: [Bool](repeating: false, count: 9))]], resamples: 200)
        XCTAssertEqual([opposite.estimate, opposite.lower, opposite.upper], [1, 1, 1])
    }

    /// Differences (1, 0): a resample's mean is 0, ½ or 1 with probabilities ¼, ½, ¼, so the
    /// 2.5% and 97.5% quantiles of 2000 draws are 0 and 1, and ½ appears about half the time.
    func testTwoItemsHaveTheExactResamplingLaw() {
        let seeds = [[Stratum(a: [true, false], b: [false, false])]]
        let i = PairedBootstrap.interval(seeds: seeds, resamples: 2000, seed: 7)
        XCTAssertEqual(i.estimate, 0.5)
        XCTAssertEqual(i.lower, 0)
        XCTAssertEqual(i.upper, 1)
    }

    /// Random correlated paired items: the 95% interval is estimate ± 1.96·sqrt(var(d)/n) up to Monte Carlo
    /// error, d the per-item differences and var their population variance.
    func testWidthFollowsTheNormalApproximation() {
        var rng = SplitMix64(seed: 3)
        let n = 400
        let a = (0..<n).map { _ in Double.random(in: 0..<1, using: &rng) < 0.7 }
        // B agrees with A on most items (two similar models): pairing narrows the interval well
        // below an unpaired bootstrap's sqrt((var(a) + var(b)) / n).
        let b = a.map { Double.random(in: 0..<1, using: &rng) < 0.15 ? !$0 : $0 }
        let d = zip(a, b).map { Double(($0 ? 1 : 0) - ($1 ? 1 : 0)) }
        let mean = d.reduce(0, +) / Double(n)
        let variance = d.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)
        let half = 1.96 * (variance / Double(n)).squareRoot()

        let one = PairedBootstrap.interval(seeds: [[Stratum(a: a, b: b)]], resamples: 2000, seed: 1)
        XCTAssertEqual(one.estimate, mean, accuracy: 1e-12)
        XCTAssertEqual(one.lower, mean - half, accuracy: 0.15 * half)
        XCTAssertEqual(one.upper, mean + half, accuracy: 0.15 * half)

        // Four seeds with the same items, each resampled independently: variance / 4.
        let pooled = PairedBootstrap.interval(seeds: [[Stratum]](repeating: [Stratum(a: a, b: b)], count: 4), resamples: 2000, seed: 1)
        XCTAssertEqual(pooled.estimate, mean, accuracy: 1e-12)
        XCTAssertEqual(pooled.upper - pooled.lower, half, accuracy: 0.15 * half)
    }

    /// Test sets of different sizes weigh equally (the tables' macro mean), not by item count.
    func testStrataAreAveragedNotPooled() {
        let small = Stratum(a: [true, true], b: [false, false])                      // +1
        let large = Stratum(a: [Bool](repeating: false, count: 8), b: [Bool](repeating: false, count: 8))  // 0
        XCTAssertEqual(PairedBootstrap.interval(seeds: [[small, large]], resamples: 10).estimate, 0.5)
        // Two seeds: the mean of the seeds' statistics.
        XCTAssertEqual(PairedBootstrap.interval(seeds: [[small], [large]], resamples: 10).estimate, 0.5)
    }

    func testSameSeedSameIntervalAndNumpyQuantiles() {
        let s = [[Stratum(a: (0..<30).map { $0 % 2 == 0 }, b: (0..<30).map { $0 % 3 == 0 })]]
        XCTAssertEqual(PairedBootstrap.interval(seeds: s, seed: 5), PairedBootstrap.interval(seeds: s, seed: 5))
        // numpy.quantile([1, 2, 3, 4], [0.25, 0.975]) == [1.75, 3.925]
        XCTAssertEqual(PairedBootstrap.quantile([1, 2, 3, 4], 0.25), 1.75, accuracy: 1e-12)
        XCTAssertEqual(PairedBootstrap.quantile([1, 2, 3, 4], 0.975), 3.925, accuracy: 1e-12)
    }
}
