// `[FORMAT:]PATH` arguments naming files of unlabelled text (pretrain --text, barrier --data on
// masked-LM models): a raw corpus format (vader, trec, sms-spam, orange-tab: its texts, labels
// dropped) or a text layout (text, csv, jsonl; default from the extension, as predict reads).

import Model

enum TextSources {
    /// The texts of every argument, in order.
    static func load(_ arguments: [String], textField: String = "text") throws -> [String] {
        var texts: [String] = []
        for argument in arguments {
            var format: String?, path = argument
            if let colon = argument.firstIndex(of: ":") {
                let prefix = String(argument[..<colon])
                // A prefix that is not a format name must be an error, not a path: "orang-tab:x"
                // would otherwise be read as a file named so.
                if !prefix.contains("/") {
                    format = prefix
                    path = String(argument[argument.index(after: colon)...])
                }
            }
            if let format, let corpus = RawCorpusFormat(rawValue: format) {
                texts += try LabeledDataset.load(corpus: corpus, path: path).texts
            } else if let format, TextFormat(rawValue: format) == nil {
                throw PretrainingError.unknownTextFormat(argument: argument, format: format)
            } else {
                let reader = try TextRecordReader(path: path, format: format.flatMap(TextFormat.init(rawValue:)), textField: textField)
                while let record = try reader.next() { texts.append(record.text) }
            }
        }
        return texts
    }
}
