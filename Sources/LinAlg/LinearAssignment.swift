// LinearAssignment: the optimal one-to-one matching of rows to columns of a cost matrix
// (Hungarian method with potentials, shortest augmenting paths, O(n²·m)); permutation
// alignment of models (Sources/Alignment) matches units by it.

public enum LinearAssignment {
    public enum Objective: Sendable { case minimize, maximize }

    /// For a cost matrix (n×m, n ≤ m, row-major) the column given to each row: `result[i]` is
    /// row i's column, all distinct, with Σᵢ cost[i, result[i]] minimal (or maximal).
    public static func solve(_ cost: Tensor<Double>, _ objective: Objective = .minimize) throws -> [Int] {
        guard cost.rank == 2 else { throw LinAlgError.notSquare(operation: "linear assignment", shape: cost.shape) }
        let (n, m) = (cost.shape[0], cost.shape[1])
        guard n <= m else {
            throw LinAlgError.shapeMismatch(operation: "linear assignment (rows must not outnumber columns)", lhs: [n], rhs: [m])
        }
        guard cost.storage.allSatisfy(\.isFinite) else { throw LinAlgError.nonFinite(operation: "linear assignment") }
        if n == 0 { return [] }
        let sign: Double = objective == .minimize ? 1 : -1
        // Row potentials u (1…n), column potentials v (0…m); column 0 is a virtual column that
        // holds the row being inserted. Reduced costs c[i][j] − u[i] − v[j] stay ≥ 0 and are 0
        // on every matched pair, which is what makes the final matching optimal (LP duality).
        // Raw buffers: the inner loop runs up to n·m times per row, and array bounds and
        // uniqueness checks would dominate it (n = 1536 for a MiniLM feed-forward layer).
        func buffer<T>(_ count: Int, _ value: T) -> UnsafeMutablePointer<T> {
            let p = UnsafeMutablePointer<T>.allocate(capacity: count)
            p.initialize(repeating: value, count: count)
            return p
        }
        let u = buffer(n + 1, 0.0), v = buffer(m + 1, 0.0)
        let rowOfColumn = buffer(m + 1, 0)                        // 0: column free
        let previous = buffer(m + 1, 0)                           // the augmenting path, column to column
        let slack = buffer(m + 1, 0.0)
        let visited = buffer(m + 1, false)
        defer { for p in [u, v, slack] { p.deallocate() }; rowOfColumn.deallocate(); previous.deallocate(); visited.deallocate() }
        cost.storage.withUnsafeBufferPointer { c in
            for row in 1...n {
                // Dijkstra on reduced costs from `row` until a free column is reached.
                rowOfColumn[0] = row
                var column = 0
                for j in 0...m { slack[j] = .infinity; visited[j] = false }
                repeat {
                    visited[column] = true
                    let i = rowOfColumn[column]
                    var delta = Double.infinity, next = 0
                    let costs = c.baseAddress! + (i - 1) * m - 1     // costs[j], j = 1…m
                    let ui = u[i]
                    for j in 1...m where !visited[j] {
                        let reduced = sign * costs[j] - ui - v[j]
                        if reduced < slack[j] { slack[j] = reduced; previous[j] = column }
                        if slack[j] < delta { delta = slack[j]; next = j }
                    }
                    // Move the potentials by the smallest slack: the tree's rows go up, its
                    // columns down, so tree edges stay tight and one more becomes tight.
                    for j in 0...m {
                        if visited[j] { u[rowOfColumn[j]] += delta; v[j] -= delta } else { slack[j] -= delta }
                    }
                    column = next
                } while rowOfColumn[column] != 0
                // Flip the matching along the path back to the virtual column.
                repeat {
                    let before = previous[column]
                    rowOfColumn[column] = rowOfColumn[before]
                    column = before
                } while column != 0
            }
        }
        var result = [Int](repeating: -1, count: n)
        for j in 1...m where rowOfColumn[j] != 0 { result[rowOfColumn[j] - 1] = j - 1 }
        return result
    }

    /// Σᵢ cost[i, assignment[i]], summed in order.
    public static func total(_ cost: Tensor<Double>, _ assignment: [Int]) -> Double {
        assignment.enumerated().reduce(0) { $0 + cost[$1.offset, $1.element] }
    }
}
