// The driver both transition test classes use: step the aggregator's pure transition function
// through a list of events, keeping the state and collecting every effect.

@testable import Aggregator
import XCTest

extension XCTestCase {
    /// Steps through `events`, returning every effect.
    @discardableResult
    func run(_ s: inout AggregatorState, _ events: [AggregatorEvent]) -> [AggregatorEffect] {
        var all: [AggregatorEffect] = []
        for event in events {
            let (next, effects) = step(s, event)
            s = next
            all += effects
        }
        return all
    }
}
