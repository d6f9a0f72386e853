// Data preparation for an experiment: seeded, stratified train/validation/test splits per
// agent (or non-i.i.d. partitions of one dataset), written as CSV for the agents, with sizes
// and class counts printed and recorded.

import Foundation
import Model

/// One agent's prepared files and what is in them.
public struct AgentData: Sendable {
    public var name: String
    public var title: String
    public var labels: [String]
    public var maxLength: Int
    public var train: LabeledDataset
    public var validation: LabeledDataset
    public var test: LabeledDataset
    public var trainPath: String
    public var validationPath: String
    public var testPath: String

    /// "n (label=count …)" for the report header.
    static func describe(_ d: LabeledDataset) -> String {
        "\(d.count) (" + zip(d.labelNames, d.labelCounts()).map { "\($0)=\($1)" }.joined(separator: " ") + ")"
    }
    public var summary: [String: String] {
        ["train": Self.describe(train), "validation": Self.describe(validation), "test": Self.describe(test)]
    }
}

public enum ExperimentDataError: Error, CustomStringConvertible {
    case labelMismatch(file: String, label: String, known: [String])
    public var description: String {
        switch self {
        case let .labelMismatch(file, label, known): return "\(file): label '\(label)' is not among the training file's labels \(known)"
        }
    }
}

public enum ExperimentData {
    static func load(corpus: String, path: String) throws -> LabeledDataset {
        if let raw = RawCorpusFormat(rawValue: corpus) { return try LabeledDataset.load(corpus: raw, path: path) }
        return try LabeledDataset.load(path: path, format: DataFormat(rawValue: corpus))
    }

    /// `data` with its labels renamed into `names`' indices (a test file may lack classes).
    static func relabel(_ data: LabeledDataset, to names: [String], file: String) throws -> LabeledDataset {
        var out = LabeledDataset(examples: [], labelNames: names, isMultiLabel: false)
        for e in data.examples {
            let name = data.labelNames[e.labels[0]]
            guard let i = names.firstIndex(of: name) else { throw ExperimentDataError.labelMismatch(file: file, label: name, known: names) }
            out.examples.append(LabeledExample(text: e.text, labels: [i]))
        }
        return out
    }

    static func cap(_ d: LabeledDataset, _ n: Int, seed: UInt64) -> LabeledDataset {
        var s = d.shuffled(seed: seed)
        s.examples = Array(s.examples.prefix(n))
        return s
    }

    /// Stratified train/validation/test pools of one member (test from `testInput` when given).
    static func pools(_ m: ExperimentConfig.Member, seed: UInt64) throws -> (train: LabeledDataset, validation: LabeledDataset, test: LabeledDataset) {
        let all = try load(corpus: m.corpus, path: m.input)
        if let testInput = m.testInput {
            let test = try relabel(try load(corpus: m.corpus, path: testInput), to: all.labelNames, file: testInput)
            let parts = all.stratifiedSplit(fractions: [0.85, 0.15], seed: seed)
            return (parts[0], parts[1], test)
        }
        let parts = all.stratifiedSplit(fractions: [0.7, 0.1, 0.2], seed: seed)
        return (parts[0], parts[1], parts[2])
    }

    /// One member's training set (capped at `trainSize`) and test set (capped at `testSize`),
    /// the examples `prepareMembers` gives that member's agent; the privacy sweep's
    /// different-tasks setting reads its members through here.
    public static func trainAndTest(_ m: ExperimentConfig.Member, seed: UInt64, trainSize: Int, testSize: Int) throws
        -> (train: LabeledDataset, test: LabeledDataset) {
        let p = try pools(m, seed: seed)
        return (cap(p.train, trainSize, seed: seed), cap(p.test, testSize, seed: seed))
    }

    static func write(name: String, title: String, maxLength: Int, train: LabeledDataset, validation: LabeledDataset,
                      test: LabeledDataset, into directory: String) throws -> AgentData {
        let dir = directory + "/" + name
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let data = AgentData(name: name, title: title, labels: train.labelNames, maxLength: maxLength, train: train,
                             validation: validation, test: test, trainPath: dir + "/train.csv",
                             validationPath: dir + "/validation.csv", testPath: dir + "/test.csv")
        try train.write(to: data.trainPath)
        try validation.write(to: data.validationPath)
        try test.write(to: data.testPath)
        say("data \(name): train \(AgentData.describe(train)); validation \(AgentData.describe(validation)); test \(AgentData.describe(test))")
        return data
    }

    /// One agent per member (settings domains and tasks).
    public static func prepareMembers(_ config: ExperimentConfig, into directory: String) throws -> [AgentData] {
        let seed = UInt64(config.seed)
        return try config.members.map { m in
            let p = try pools(m, seed: seed)
            return try write(name: m.name, title: m.title, maxLength: m.maxLength,
                             train: cap(p.train, config.trainSize, seed: seed), validation: cap(p.validation, config.validationSize, seed: seed),
                             test: cap(p.test, config.testSize, seed: seed), into: directory)
        }
    }

    /// `config.partitions` agents over one dataset's training pool in non-i.i.d. partitions of
    /// `trainSize` each; every agent validates and tests on the joint validation/test sets.
    public static func preparePartitions(_ config: ExperimentConfig, into directory: String) throws -> (agents: [AgentData], partition: NonIIDPartition) {
        let seed = UInt64(config.seed)
        let m = config.members[0]
        let p = try pools(m, seed: seed)
        let pool = cap(p.train, config.trainSize * config.partitions, seed: seed)
        let partition = try NonIIDPartition.make(labels: pool.singleLabels, classes: pool.labelNames.count,
                                                 partitions: config.partitions, keyFraction: config.keyFraction, seed: seed)
        let validation = cap(p.validation, config.validationSize, seed: seed)
        let test = cap(p.test, config.testSize, seed: seed)
        say("data \(m.name): key class \(pool.labelNames[partition.keyClass]) (\(Int(config.keyFraction * 100))% of it in partition 0)")
        let agents = try partition.members.enumerated().map { k, indices in
            var part = pool
            part.examples = indices.map { pool.examples[$0] }
            return try write(name: "\(m.name)-p\(k)", title: "\(m.title) part \(k)", maxLength: m.maxLength,
                             train: part, validation: validation, test: test, into: directory)
        }
        return (agents, partition)
    }
}
