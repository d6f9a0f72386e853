// Options shared by the commands that read labelled text (finetune, stats): file format and
// the names of the text and label columns.

import ArgumentParser
import Model

struct DataArguments: ParsableArguments {
    @Option(help: "Data format: csv, jsonl (default: from the extension), or a raw corpus: vader, trec, sms-spam, orange-tab.")
    var format: String?

    @Option(help: "Column/field holding the text (csv, jsonl).")
    var textField = "text"

    @Option(help: "Column/field holding the label (csv, jsonl; a JSON array makes the data multi-label).")
    var labelField = "label"

    func validate() throws {
        if let format, DataFormat(rawValue: format) == nil, RawCorpusFormat(rawValue: format) == nil {
            throw ValidationError("--format \(format) is not one of csv, jsonl, " + RawCorpusFormat.allCases.map(\.rawValue).joined(separator: ", "))
        }
    }

    /// Loads `path`; `labelNames` fixes the label order (the training set's, when loading a test set).
    func load(_ path: String, labelNames: [String]? = nil) throws -> LabeledDataset {
        if let format, let corpus = RawCorpusFormat(rawValue: format) {
            return try LabeledDataset.load(corpus: corpus, path: path)
        }
        return try LabeledDataset.load(path: path, format: format.flatMap(DataFormat.init(rawValue:)),
                                       textField: textField, labelField: labelField, labelNames: labelNames)
    }
}
