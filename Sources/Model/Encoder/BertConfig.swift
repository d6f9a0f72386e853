// BertConfig: the fields of a Hugging Face BERT `config.json` this encoder uses, plus the
// classification-head fields of BertForSequenceClassification (or the masked-LM head of
// BertForMaskedLM); unknown fields are kept verbatim.

import Foundation

public struct BertConfig: Sendable, Equatable {
    public enum ProblemType: String, Sendable { case singleLabel = "single_label_classification", multiLabel = "multi_label_classification" }
    /// How the classifier sees a sequence: HF's BertForSequenceClassification path (CLS → pooler
    /// dense + tanh) or the mean of the non-padding last hidden states (sentence-transformers style).
    public enum Pooling: String, Sendable { case cls, mean }

    public var vocabSize: Int
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var intermediateSize: Int
    public var maxPositionEmbeddings: Int
    public var typeVocabSize: Int
    public var layerNormEps: Float
    public var hiddenDropoutProb: Float
    public var attentionProbsDropoutProb: Float
    public var classifierDropout: Float?
    public var initializerRange: Double
    /// Label names by index; empty when the model has no classification head (a base BertModel).
    public var labels: [String]
    public var problemType: ProblemType
    public var pooling: Pooling
    /// Whether the model carries BertForMaskedLM's head (`cls.predictions.*`, decoder tied to the
    /// word embeddings). A model has a classifier or this head, never both: fine-tuning drops it.
    public var maskedLMHead: Bool
    /// The config.json object as read, re-emitted with our fields overlaid so nothing is lost.
    public var originalJSON: Data

    public var numLabels: Int { labels.count }
    public var headSize: Int { hiddenSize / numAttentionHeads }

    /// A small random-init config for tests and benchmarks.
    public init(vocabSize: Int, hiddenSize: Int, numHiddenLayers: Int, numAttentionHeads: Int, intermediateSize: Int,
                maxPositionEmbeddings: Int = 512, typeVocabSize: Int = 2, layerNormEps: Float = 1e-12,
                hiddenDropoutProb: Float = 0.1, attentionProbsDropoutProb: Float = 0.1, initializerRange: Double = 0.02,
                labels: [String] = [], problemType: ProblemType = .singleLabel, pooling: Pooling = .cls,
                maskedLMHead: Bool = false) {
        precondition(labels.isEmpty || !maskedLMHead, "a model has a classifier or a masked-LM head, not both")
        self.vocabSize = vocabSize; self.hiddenSize = hiddenSize; self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads; self.intermediateSize = intermediateSize
        self.maxPositionEmbeddings = maxPositionEmbeddings; self.typeVocabSize = typeVocabSize
        self.layerNormEps = layerNormEps; self.hiddenDropoutProb = hiddenDropoutProb
        self.attentionProbsDropoutProb = attentionProbsDropoutProb; self.classifierDropout = nil
        self.initializerRange = initializerRange; self.labels = labels; self.problemType = problemType
        self.pooling = pooling
        self.maskedLMHead = maskedLMHead
        self.originalJSON = Data("{\"model_type\": \"bert\"}".utf8)
    }

    /// Reads a Hugging Face BERT config.json.
    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw EncoderError.missingFile(path: path) }
        try self.init(json: data, path: path)
    }

    public init(json data: Data, path: String = "config.json") throws {
        let object: [String: Any]
        do {
            guard let o = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw EncoderError.unreadableConfig(path: path, reason: "top level is not a JSON object")
            }
            object = o
        } catch let e as EncoderError { throw e } catch {
            throw EncoderError.unreadableConfig(path: path, reason: "\(error.localizedDescription)")
        }
        func int(_ key: String, default value: Int? = nil) throws -> Int {
            if let n = object[key] as? NSNumber { return n.intValue }
            if let value { return value }
            throw EncoderError.missingConfigField(path: path, field: key)
        }
        func float(_ key: String, default value: Double) -> Double { (object[key] as? NSNumber)?.doubleValue ?? value }

        vocabSize = try int("vocab_size")
        hiddenSize = try int("hidden_size")
        numHiddenLayers = try int("num_hidden_layers")
        numAttentionHeads = try int("num_attention_heads")
        intermediateSize = try int("intermediate_size")
        maxPositionEmbeddings = try int("max_position_embeddings", default: 512)
        typeVocabSize = try int("type_vocab_size", default: 2)
        layerNormEps = Float(float("layer_norm_eps", default: 1e-12))
        hiddenDropoutProb = Float(float("hidden_dropout_prob", default: 0.1))
        attentionProbsDropoutProb = Float(float("attention_probs_dropout_prob", default: 0.1))
        classifierDropout = (object["classifier_dropout"] as? NSNumber).map { Float($0.doubleValue) }
        initializerRange = float("initializer_range", default: 0.02)
        originalJSON = data

        for (key, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("num_hidden_layers", numHiddenLayers),
                             ("num_attention_heads", numAttentionHeads), ("intermediate_size", intermediateSize)] where value <= 0 {
            throw EncoderError.unsupportedConfig(path: path, field: key, value: "\(value)")
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw EncoderError.unsupportedConfig(path: path, field: "hidden_size/num_attention_heads", value: "\(hiddenSize)/\(numAttentionHeads)")
        }
        let act = object["hidden_act"] as? String ?? "gelu"
        guard act == "gelu" else { throw EncoderError.unsupportedConfig(path: path, field: "hidden_act", value: act) }
        let positions = object["position_embedding_type"] as? String ?? "absolute"
        guard positions == "absolute" else {
            throw EncoderError.unsupportedConfig(path: path, field: "position_embedding_type", value: positions)
        }

        // id2label is {"0": "NEG", "1": "POS"}; num_labels alone (no names) gets LABEL_i like HF.
        if let id2label = object["id2label"] as? [String: String], !id2label.isEmpty {
            var names = [String](repeating: "", count: id2label.count)
            for (k, v) in id2label {
                guard let i = Int(k), i >= 0, i < names.count else {
                    throw EncoderError.unsupportedConfig(path: path, field: "id2label", value: k)
                }
                names[i] = v
            }
            labels = names
        } else if let n = object["num_labels"] as? NSNumber {
            labels = (0..<n.intValue).map { "LABEL_\($0)" }
        } else {
            labels = []
        }
        // Only a BertForSequenceClassification checkpoint carries a classifier; a base BertModel
        // config may still list HF's default id2label, which must not conjure up a head.
        let architectures = object["architectures"] as? [String] ?? []
        if !architectures.contains("BertForSequenceClassification") { labels = [] }
        maskedLMHead = labels.isEmpty && architectures.contains("BertForMaskedLM")
        let problem = object["problem_type"] as? String
        problemType = problem.flatMap(ProblemType.init(rawValue:)) ?? .singleLabel
        let pool = object["fedmerge_pooling"] as? String ?? "cls"
        guard let p = Pooling(rawValue: pool) else { throw EncoderError.unsupportedConfig(path: path, field: "fedmerge_pooling", value: pool) }
        pooling = p
    }

    /// config.json text: the original object with our fields overlaid (sorted keys, indented).
    /// With a head it declares BertForSequenceClassification so `transformers` loads it as one.
    public func jsonData() throws -> Data {
        var object = (try? JSONSerialization.jsonObject(with: originalJSON) as? [String: Any]) ?? [:]
        object["model_type"] = "bert"
        object["vocab_size"] = vocabSize
        object["hidden_size"] = hiddenSize
        object["num_hidden_layers"] = numHiddenLayers
        object["num_attention_heads"] = numAttentionHeads
        object["intermediate_size"] = intermediateSize
        object["max_position_embeddings"] = maxPositionEmbeddings
        object["type_vocab_size"] = typeVocabSize
        object["layer_norm_eps"] = Double(layerNormEps)
        object["hidden_dropout_prob"] = Double(hiddenDropoutProb)
        object["attention_probs_dropout_prob"] = Double(attentionProbsDropoutProb)
        object["initializer_range"] = initializerRange
        object["hidden_act"] = "gelu"
        if !labels.isEmpty {
            object["architectures"] = ["BertForSequenceClassification"]
            object["num_labels"] = labels.count
            object["id2label"] = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ("\($0.offset)", $0.element) })
            object["label2id"] = Dictionary(labels.enumerated().map { ($0.element, $0.offset) }, uniquingKeysWith: { a, _ in a })
            object["problem_type"] = problemType.rawValue
            object["fedmerge_pooling"] = pooling.rawValue
        } else if maskedLMHead {
            object["architectures"] = ["BertForMaskedLM"]
            object["tie_word_embeddings"] = true
        }
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }
}
