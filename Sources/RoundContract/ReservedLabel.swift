// Labels with a fixed meaning in EVALs and in a merge's output directory: a merge method may
// not be named like one of them.

public enum ReservedLabel {
    /// An agent's EVAL of its own fine-tuned model (the baseline row of every report).
    public static let local = "local"
    /// Files a merge's output directory holds beside its merged models.
    public static let outputFiles = ["report.md", "report.json", "report.svg", "evals.json",
                                     "eval-failures.json", "delivered.json", "merged-agents.json", "merge.json"]
    public static let all = [local] + outputFiles
}
