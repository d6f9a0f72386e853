// What a merge method asks each agent to send, and the names those statistics carry inside
// stats.safetensors (DESIGN.md §3). Writers (Model's collectors) and readers (Merge,
// MergeIO, the aggregator's store) spell every key through this file.

/// A statistic a method needs from each model's stats.safetensors. On the wire (WELCOME) it
/// travels as its raw value: "gram", "fisher", "kfac_out", "label_counts".
public enum StatisticKind: String, Sendable, CaseIterable, Codable, Comparable {
    case gram, fisher, kfacOut = "kfac_out", labelCounts = "label_counts"

    public static func < (a: StatisticKind, b: StatisticKind) -> Bool { a.rawValue < b.rawValue }

    /// The tensor-name suffix that marks this kind in stats.safetensors (nil: metadata only).
    public var tensorSuffix: String? {
        switch self {
        case .gram: StatisticKey.gramSuffix
        case .fisher: StatisticKey.fisherSuffix
        case .kfacOut: StatisticKey.kfacOutSuffix
        case .labelCounts: nil
        }
    }

    /// True when a statistics file with these tensor names and metadata keys holds this kind.
    public func isPresent(tensorNames: [String], metadataKeys: some Sequence<String>) -> Bool {
        if let suffix = tensorSuffix { return tensorNames.contains { $0.hasSuffix(suffix) } }
        return metadataKeys.contains(StatisticKey.labelCounts)
    }
}

/// Names inside stats.safetensors. `<linear>` is a weight's name without `.weight`.
public enum StatisticKey {
    public static let gramSuffix = ".gram"
    public static let fisherSuffix = ".fisher"
    public static let kfacOutSuffix = ".kfac_out"
    /// Metadata: per-label training example counts, a JSON array of integers.
    public static let labelCounts = "train.label_counts"
    /// Metadata: examples the diagonal Fisher is a mean over.
    public static let fisherExamples = "fisher.num_examples"
    /// Metadata: examples the K-FAC output factors were collected over.
    public static let kfacExamples = "kfac_out.num_examples"

    /// Tensor: Σ x xᵀ of `linear`'s input, d_in×d_in.
    public static func gram(_ linear: String) -> String { linear + gramSuffix }
    /// Metadata: rows (tokens, or examples for pooled heads) the Gram of `linear` sums over.
    public static func gramRows(_ linear: String) -> String { linear + gramSuffix + ".num_rows" }
    /// Metadata: `linear` shares the input (and so the Gram) of the linear named in the value.
    public static func gramSameAs(_ linear: String) -> String { linear + gramSuffix + ".same_as" }
    /// Tensor: the diagonal Fisher of `parameter`, the parameter's shape.
    public static func fisher(_ parameter: String) -> String { parameter + fisherSuffix }
    /// Tensor: Σ g gᵀ of `linear`'s output gradients, d_out×d_out.
    public static func kfacOut(_ linear: String) -> String { linear + kfacOutSuffix }
    /// Metadata: rows the K-FAC output factor of `linear` sums over.
    public static func kfacOutRows(_ linear: String) -> String { linear + kfacOutSuffix + ".num_rows" }
    /// Metadata key of a statistic tensor's row count (`<tensor>.num_rows`).
    public static func rows(ofTensor name: String) -> String { name + ".num_rows" }

    /// The linear or parameter a statistic tensor belongs to, and its kind; nil for other names.
    public static func parse(_ tensorName: String) -> (owner: String, kind: StatisticKind)? {
        for kind in [StatisticKind.gram, .kfacOut, .fisher] {
            if let suffix = kind.tensorSuffix, tensorName.hasSuffix(suffix) {
                return (String(tensorName.dropLast(suffix.count)), kind)
            }
        }
        return nil
    }
}
