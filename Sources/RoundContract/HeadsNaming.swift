// How classifier heads are named when a merge keeps one head per agent (`heads: keep`): the
// merge writes agent a's head `classifier.` as `classifier_a.`, and each agent picks its own
// back out of the merged file. Both sides spell the names through here.

public enum HeadsNaming {
    /// The heads prefix when a method does not set `heads_prefix`.
    public static let defaultPrefix = "classifier."

    /// "classifier." → "classifier" (the stem the per-agent prefixes are built on).
    public static func stem(_ headsPrefix: String) -> String {
        headsPrefix.hasSuffix(".") ? String(headsPrefix.dropLast()) : headsPrefix
    }

    /// The prefix agent `agent`'s kept head is written under: "classifier_<agent>.".
    public static func keptPrefix(agent: String, headsPrefix: String = defaultPrefix) -> String {
        stem(headsPrefix) + "_" + agent + "."
    }

    /// True when `name` is some agent's kept head (any "classifier_<x>." tensor) or a shared head.
    public static func isAnyHead(_ name: String, headsPrefix: String = defaultPrefix) -> Bool {
        name.hasPrefix(headsPrefix) || name.hasPrefix(stem(headsPrefix) + "_")
    }
}
