// Fine-tuned agent models kept across experiment runs, so a report re-run with another merge
// method does not fine-tune again. An entry is keyed by what the model depends on — the
// agent's training split (digest of the file the agent trains on), the fine-tuning seed,
// the training recipe and the base model's fingerprint — and written with that key beside it.
// Restoring puts the model into the agent's `prepared/` directory with the agent's own
// manifest: the agent still checks its inputs itself and fine-tunes if they differ.

import AtomicIO
import Foundation
import Protocol

public struct FinetuneCache {
    /// `<workdir>/finetuned`: one directory per (agent, key).
    public let directory: String
    /// The files of a prepared directory that make the model: all but the statistics, which
    /// depend on each round's request and are recomputed.
    static func modelFiles(in directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { !$0.hasPrefix("stats") && $0 != "cache-key.txt" }.sorted()
    }

    public init(directory: String) {
        self.directory = directory
    }

    /// The key text: every input of the fine-tuned model, one per line.
    public static func key(trainFile: String, seed: Int, epochs: Int, learningRate: Double, batchSize: Int, maxLength: Int,
                           labels: [String], baseModel: String) throws -> String {
        ["split=" + (try SHA256Hasher.hashFile(trainFile)),
         "seed=\(seed)",
         "recipe=epochs \(epochs), lr \(learningRate), batch \(batchSize), max_len \(maxLength), labels \(labels)",
         "base=" + (try ModelFingerprint.of(directory: baseModel))].joined(separator: "\n") + "\n"
    }

    func entry(agent: String, key: String) -> String {
        let h = SHA256Hasher()
        h.update(Data(key.utf8))
        return directory + "/\(agent)-" + String(h.finalizeHex().prefix(16))
    }

    /// Copies the cached model into `prepared` when an entry with exactly `key` exists; false otherwise.
    public func restore(agent: String, key: String, into prepared: String) throws -> Bool {
        let e = entry(agent: agent, key: key)
        guard (try? String(contentsOfFile: e + "/cache-key.txt", encoding: .utf8)) == key,
              FileManager.default.fileExists(atPath: e + "/model.safetensors") else { return false }
        try? FileManager.default.removeItem(atPath: prepared)
        try FileManager.default.createDirectory(atPath: prepared, withIntermediateDirectories: true)
        for name in try Self.modelFiles(in: e) {
            try FileManager.default.copyItem(atPath: e + "/" + name, toPath: prepared + "/" + name)
        }
        return true
    }

    /// Stores the model in `prepared` under `key` (a temporary directory renamed into place, the
    /// key file written last inside it); an existing entry with the same key is kept.
    public func store(agent: String, key: String, from prepared: String) throws {
        let e = entry(agent: agent, key: key)
        if (try? String(contentsOfFile: e + "/cache-key.txt", encoding: .utf8)) == key { return }
        let temporary = e + ".partial"
        try? FileManager.default.removeItem(atPath: temporary)
        try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        for name in try Self.modelFiles(in: prepared) {
            try FileManager.default.copyItem(atPath: prepared + "/" + name, toPath: temporary + "/" + name)
        }
        // The agent's manifest without the statistics' key: the statistics are not cached.
        if let data = FileManager.default.contents(atPath: temporary + "/prepared.json"),
           var manifest = try JSONSerialization.jsonObject(with: data) as? [String: Any] {
            manifest.removeValue(forKey: "statsKey")
            try AtomicFile.write(try JSONSerialization.data(withJSONObject: manifest), to: temporary + "/prepared.json")
        }
        try AtomicFile.write(Data(key.utf8), to: temporary + "/cache-key.txt")
        try? FileManager.default.removeItem(atPath: e)
        try FileManager.default.moveItem(atPath: temporary, toPath: e)
    }
}
