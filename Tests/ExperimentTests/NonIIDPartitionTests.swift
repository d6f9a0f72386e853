// NonIIDPartition: the key class's 80/20 split and equal partition sizes, against hand counts.

import Experiment
import XCTest

final class NonIIDPartitionTests: XCTestCase {
    /// 20 examples: class 0 ×10, class 1 ×6, class 2 ×4. Whatever key class the seed draws,
    /// partition 0 holds round(0.8·n_key) of it, partition 1 the rest, and each holds 10 examples.
    func testKeyClassEightyPercentInFirstPartitionAndEqualSizes() throws {
        let labels = Array(repeating: 0, count: 10) + Array(repeating: 1, count: 6) + Array(repeating: 2, count: 4)
        let expectedFirst = [0: 8, 1: 5, 2: 3]   // round(0.8·10), round(0.8·6)=4.8→5, round(0.8·4)=3.2→3
        var keysSeen = Set<Int>()
        for seed in UInt64(0)..<12 {
            let p = try NonIIDPartition.make(labels: labels, classes: 3, partitions: 2, keyFraction: 0.8, seed: seed)
            keysSeen.insert(p.keyClass)
            XCTAssertEqual(p.members.map(\.count), [10, 10])
            XCTAssertEqual(Set(p.members[0] + p.members[1]), Set(0..<20), "every example in exactly one partition")
            XCTAssertEqual(p.members[0].count + p.members[1].count, 20)
            let keyIn = p.members.map { m in m.filter { labels[$0] == p.keyClass }.count }
            XCTAssertEqual(keyIn[0], expectedFirst[p.keyClass], "seed \(seed), key \(p.keyClass)")
            XCTAssertEqual(keyIn[1], labels.filter { $0 == p.keyClass }.count - expectedFirst[p.keyClass]!)
        }
        XCTAssertGreaterThan(keysSeen.count, 1, "the key class depends on the seed")
    }

    func testSameSeedSamePartition() throws {
        let labels = (0..<30).map { $0 % 3 }
        let a = try NonIIDPartition.make(labels: labels, classes: 3, partitions: 2, keyFraction: 0.8, seed: 7)
        let b = try NonIIDPartition.make(labels: labels, classes: 3, partitions: 2, keyFraction: 0.8, seed: 7)
        XCTAssertEqual(a, b)
    }

    /// Odd total: sizes 3 and 2; a key class of 4 examples puts round(3.2)=3 in partition 0,
    /// which then has no room for others.
    func testOddCountAndFullFirstPartition() throws {
        let labels = [5, 5, 5, 5, 1]
        let p = try NonIIDPartition.make(labels: labels, classes: 6, partitions: 2, keyFraction: 0.8, seed: 3)
        XCTAssertEqual(p.members.map(\.count), [3, 2])
        if p.keyClass == 5 {
            XCTAssertEqual(p.members[0].map { labels[$0] }, [5, 5, 5])
            XCTAssertEqual(p.members[1].map { labels[$0] }.sorted(), [1, 5])
        } else {
            XCTAssertEqual(p.keyClass, 1)
            XCTAssertEqual(p.members[0].filter { labels[$0] == 1 }.count, 1)   // round(0.8·1) = 1
        }
    }

    func testKeyClassLargerThanAPartitionIsAnError() {
        // Key class 0 has 9 of 10 examples: round(0.8·9)=7 > partition size 5.
        let labels = Array(repeating: 0, count: 9) + [1]
        var failures = 0
        for seed in UInt64(0)..<8 {
            do {
                let p = try NonIIDPartition.make(labels: labels, classes: 2, partitions: 2, keyFraction: 0.8, seed: seed)
                XCTAssertEqual(p.keyClass, 1, "only key class 1 (one example) fits")
            } catch let e as NonIIDPartition.Failure {
                XCTAssertEqual(e, .keyClassTooLarge(keyInFirst: 7, partitionSize: 5))
                failures += 1
            } catch { XCTFail("\(error)") }
        }
        XCTAssertGreaterThan(failures, 0)
    }
}
