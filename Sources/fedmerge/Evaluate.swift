// `fedmerge evaluate`: a classifier scored on a labelled file — accuracy, macro-F1, per-class
// precision/recall/F1 and the confusion matrix — as a table or JSON, in bounded memory. The
// numbers come from Model's Evaluation, the same code the agents' EVAL runs.

import ArgumentParser
import Foundation
import Model

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a classifier on labelled texts: accuracy, macro-F1, per-class precision/recall, confusion matrix.",
        discussion: """
        --data is CSV or JSONL with a text and a label column/field (label names from the \
        model's id2label, or their indices); or any predict input (plain text, one per line) \
        with --labels FILE giving one label per line, record for record.
          fedmerge evaluate --model out/minilm-movies --data test.jsonl --json

        """ + TextFileArguments.memoryDiscussion
    )

    @Option(help: "Model directory (config.json, model.safetensors or its shards, vocab.txt).") var model: String
    @Option(help: "Labelled data file (- reads stdin).") var data: String
    @Option(help: "Gold labels, one per line for each record of --data (then --data needs texts only).") var labels: String?
    @Option(help: "CSV column / JSONL field holding the label (without --labels).") var labelField = "label"
    @Flag(help: "Print the report as one JSON object.") var json = false
    @OptionGroup var file: TextFileArguments

    func run() throws {
        let encoder = try ModelDirectory.load(model)
        let tokenizer = try WordPieceTokenizer(vocabularyFile: model + "/vocab.txt")
        guard encoder.config.numLabels > 0 else { throw EncoderError.noClassifier }
        let names = encoder.config.labels
        let format = file.format ?? (data == "-" ? .text : TextFormat(path: data))
        let reader: TextRecordReader
        var next: () throws -> (labels: [Int], text: String)?
        if let labels {
            reader = try TextRecordReader(path: data, format: format, textField: file.textField)
            let gold = try TextRecordReader(path: labels, format: .text)
            next = {
                let record = try reader.next(), label = try gold.next()
                switch (record, label) {
                case (nil, nil): return nil
                case let (record?, label?):
                    return ([try LabeledDataset.labelIndex(of: label.text.trimmingCharacters(in: .whitespaces), names: names,
                                                          file: gold.file, line: label.line, field: "label")], record.text)
                case let (record?, nil): throw EvaluateError.labelsEnd(labels: gold.file, data: reader.file, line: record.line)
                case let (nil, label?): throw EvaluateError.dataEnds(data: reader.file, labels: gold.file, line: label.line)
                }
            }
        } else {
            guard format != .text else {
                throw ValidationError("\(data) is plain text: give --labels FILE, or use CSV/JSONL with a \(labelField) column")
            }
            reader = try TextRecordReader(path: data, format: format, textField: file.textField, labelField: labelField, labelNames: names)
            next = { try reader.next().map { ($0.labels!, $0.text) } }
        }
        let progress = file.progressBar(for: data, label: "evaluate")
        let report = try Evaluation.evaluate(encoder, tokenizer: tokenizer, plan: file.plan, progress: { progress.advance($0) }, next: next)
        progress.finish()
        guard report.examples > 0 else { throw DatasetError.empty(file: reader.file) }
        print(json ? try Self.json(report, model: model, data: reader.file) : Self.table(report, model: model, data: reader.file))
    }

    static func json(_ r: EvaluationReport, model: String, data: String) throws -> String {
        let perClass = r.labelNames.indices.map { c -> [String: Any] in
            ["label": r.labelNames[c], "precision": r.precision(c), "recall": r.recall(c), "f1": r.f1(c), "support": r.support(c)]
        }
        let object: [String: Any] = [
            "model": model, "data": data, "examples": r.examples, "problem_type": r.problemType.rawValue,
            "accuracy": r.accuracy, "macro_f1": r.macroF1, "loss": r.meanLoss, "labels": r.labelNames, "per_class": perClass,
            // rows: true label, columns: predicted label (single-label models only)
            "confusion_matrix": r.problemType == .singleLabel ? r.confusion.counts as Any : NSNull(),
        ]
        return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    static func table(_ r: EvaluationReport, model: String, data: String) -> String {
        let width = max(5, r.labelNames.map(\.count).max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func left(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        var out = "model \(model)\ndata  \(data) (\(r.examples) examples)\n"
        out += String(format: "%@ %.4f   macro-F1 %.4f   loss %.4f\n\n",
                      r.problemType == .singleLabel ? "accuracy" : "exact match", r.accuracy, r.macroF1, r.meanLoss)
        out += pad("label", width) + "  precision  recall      f1  support\n"
        for c in r.labelNames.indices {
            out += pad(r.labelNames[c], width) + String(format: "  %9.4f  %6.4f  %6.4f  %7d\n", r.precision(c), r.recall(c), r.f1(c), r.support(c))
        }
        guard r.problemType == .singleLabel else { return out }
        let cell = max(width, String(r.examples).count)
        out += "\nconfusion matrix (rows: true label, columns: predicted)\n" + pad("", width)
        out += r.labelNames.map { "  " + left($0, cell) }.joined() + "\n"
        for (c, row) in r.confusion.counts.enumerated() {
            out += pad(r.labelNames[c], width) + row.map { "  " + left(String($0), cell) }.joined() + "\n"
        }
        return out
    }
}

/// A --labels file that does not pair up with --data, naming both and where one ran out.
enum EvaluateError: Error, CustomStringConvertible {
    case labelsEnd(labels: String, data: String, line: Int)
    case dataEnds(data: String, labels: String, line: Int)

    var description: String {
        switch self {
        case let .labelsEnd(labels, data, line): return "\(labels) has no label left for the record at \(data):\(line)"
        case let .dataEnds(data, labels, line): return "\(data) has no record left for the label at \(labels):\(line)"
        }
    }
}
