// FisherLabels: which labels y the diagonal Fisher E_x E_y (∂ log p(y|x)/∂θ)² averages over.
// The papers FedMerge is compared with do not agree, so each is an option:
// - `exact` (default): the expectation over y ∼ p(y|x) computed exactly, one backward per class
//   weighted by p_y (sampled beyond 32 classes). Matena & Raffel's own Fisher computer does this
//   when no label samples are requested.
// - `sampled`: one y drawn from p(y|x) per example — the Monte-Carlo "true Fisher" (Matena &
//   Raffel's label-sampling option).
// - `empirical`: the example's gold label — the empirical Fisher, cheaper and biased (Kunstner et
//   al., "Limitations of the empirical Fisher approximation", 2019).
// (MergeLM and FusionBench back-propagate Σ_y √p_y log p_y over a whole batch once and square the
// gradient; that mixes examples and labels in cross terms, so it is none of the three.)

public enum FisherLabels: String, Sendable, CaseIterable, Equatable {
    case exact, sampled, empirical

    public static let help = "exact (E over y ∼ p(y|x), per class), sampled (one y ∼ p(y|x)), empirical (the gold label)"
}
