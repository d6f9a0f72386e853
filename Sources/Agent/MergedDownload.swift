// Turns a received merged weights file into a loadable model directory: the weights (with
// this agent's own head selected when the round kept one head per agent) plus the agent's
// own config.json and tokenizer files.

import Foundation
import LinAlg
import SafeTensors

enum MergedDownload {
    static let sideFiles = ["config.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"]

    static func assemble(weights: String, localModel: String, agentName: String, into directory: String) throws {
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let file = try SafeTensorsFile(path: weights)
        let ownHead = "classifier_\(agentName)."
        if file.names.contains(where: { $0.hasPrefix(ownHead) }) {
            // heads: keep — take our head under the standard name, drop the others'.
            var tensors: [(name: String, tensor: Tensor<Float>)] = []
            for name in file.names {
                if name.hasPrefix(ownHead) {
                    tensors.append(("classifier." + name.dropFirst(ownHead.count), try file.floatTensor(name)))
                } else if !name.hasPrefix("classifier_") && !name.hasPrefix("classifier.") {
                    tensors.append((name, try file.floatTensor(name)))
                }
            }
            try SafeTensorsWriter.write(tensors: tensors, metadata: file.metadata, to: directory + "/model.safetensors")
        } else {
            try FileManager.default.copyItem(atPath: weights, toPath: directory + "/model.safetensors")
        }
        for name in sideFiles where FileManager.default.fileExists(atPath: localModel + "/" + name) {
            try FileManager.default.copyItem(atPath: localModel + "/" + name, toPath: directory + "/" + name)
        }
    }
}
