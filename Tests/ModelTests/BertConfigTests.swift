// BertConfig: which configs get a classification head, what a saved config.json declares,
// and that unsupported or incomplete configs are refused naming the field.

import Foundation
@testable import Model
import XCTest

final class BertConfigTests: XCTestCase {
    func testBaseModelConfigWithDefaultId2LabelHasNoHeadAndSavedConfigDeclaresOne() throws {
        let base = """
        {"architectures": ["BertModel"], "vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 1,
         "num_attention_heads": 2, "intermediate_size": 8, "id2label": {"0": "LABEL_0", "1": "LABEL_1"}, "custom": 7}
        """
        var c = try BertConfig(json: Data(base.utf8))
        XCTAssertEqual(c.numLabels, 0)
        c.labels = ["neg", "pos"]
        let saved = try JSONSerialization.jsonObject(with: c.jsonData()) as! [String: Any]
        XCTAssertEqual(saved["architectures"] as? [String], ["BertForSequenceClassification"])
        XCTAssertEqual(saved["num_labels"] as? Int, 2)
        XCTAssertEqual(saved["id2label"] as? [String: String], ["0": "neg", "1": "pos"])
        XCTAssertEqual(saved["label2id"] as? [String: Int], ["neg": 0, "pos": 1])
        XCTAssertEqual(saved["custom"] as? Int, 7, "unknown base fields are kept")
        XCTAssertEqual(try BertConfig(json: c.jsonData()).labels, ["neg", "pos"])
    }

    func testConfigWithoutHiddenSizeIsRefusedNamingTheField() throws {
        XCTAssertThrowsError(try BertConfig(json: Data("{\"vocab_size\": 10}".utf8), path: "x/config.json")) { error in
            XCTAssertEqual(error as? EncoderError, .missingConfigField(path: "x/config.json", field: "hidden_size"))
        }
    }

    func testReluActivationIsRefusedNamingTheField() {
        let json = """
        {"vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8, "hidden_act": "relu"}
        """
        XCTAssertThrowsError(try BertConfig(json: Data(json.utf8), path: "m/config.json")) { error in
            XCTAssertEqual(error as? EncoderError, .unsupportedConfig(path: "m/config.json", field: "hidden_act", value: "relu"))
        }
    }
}
