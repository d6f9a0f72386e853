// Greedy subset selection (RegMean paper, Fig. 6): order the models by their validation
// score, merge each prefix of that order, keep the prefix whose merge validates best.

public enum GreedySubset {
    /// Model names sorted by validation score, best first (ties: name order, so the result is
    /// deterministic).
    public static func order(validation: [String: Double]) -> [String] {
        validation.keys.sorted { a, b in
            validation[a]! != validation[b]! ? validation[a]! > validation[b]! : a < b
        }
    }

    /// The prefix length (1…scores.count) whose merged model scored best on validation; ties
    /// go to the shorter prefix (fewer models to merge).
    public static func bestPrefix(prefixScores: [Double]) -> Int {
        precondition(!prefixScores.isEmpty, "no prefixes scored")
        var best = 0
        for (i, s) in prefixScores.enumerated() where s > prefixScores[best] { best = i }
        return best + 1
    }
}
