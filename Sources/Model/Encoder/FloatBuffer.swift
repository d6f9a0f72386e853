// FloatBuffer: a growable, reusable Float allocation for activations and scratch space, so a
// training step allocates nothing once the largest batch shape has been seen.

final class FloatBuffer {
    private(set) var pointer: UnsafeMutablePointer<Float>
    private(set) var capacity: Int

    init(_ capacity: Int = 0) {
        self.capacity = max(capacity, 1)
        pointer = .allocate(capacity: self.capacity)
        pointer.initialize(repeating: 0, count: self.capacity)
    }

    deinit { pointer.deallocate() }

    /// Makes room for n floats; old contents are dropped when it grows.
    func reserve(_ n: Int) {
        guard n > capacity else { return }
        pointer.deallocate()
        capacity = n
        pointer = .allocate(capacity: n)
        pointer.initialize(repeating: 0, count: n)
    }

    func zero(_ n: Int) { pointer.update(repeating: 0, count: n) }
}
