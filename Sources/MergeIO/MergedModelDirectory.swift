// Writing a merged model directory (model.safetensors, merge-report.json, the side files of
// one input model) atomically: built under a temporary sibling name, then renamed into place,
// so a crash or a full disk never leaves a half-written model where a complete one is expected.

import AtomicIO
import Foundation
import Merge
import SafeTensors

public enum MergedModelDirectory {
    /// Writes `result` as a Hugging Face model directory at `directory`, replacing any old one
    /// only once the new one is complete. Side files (config.json, vocab.txt, …) come from
    /// `sideFilesFrom`, then from `fallbackSideFiles` for those it lacks; `config`, when given,
    /// is written as config.json instead of a copied one.
    public static func write(_ result: MergeResult, to directory: String, sideFilesFrom source: String,
                             fallbackSideFiles: String? = nil, config: Data? = nil) throws {
        let target = URL(fileURLWithPath: directory).standardizedFileURL
        let parent = target.deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        let temporary = parent + "/." + target.lastPathComponent + ".partial-\(getpid())"
        try? FileManager.default.removeItem(atPath: temporary)
        try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: false)
        var done = false
        defer { if !done { try? FileManager.default.removeItem(atPath: temporary) } }

        try SafeTensorsWriter.write(tensors: result.tensors.pairs, metadata: ["format": "pt", "fedmerge.method": result.report.method],
                                    to: temporary + "/model.safetensors")
        let copied = try ModelFiles.copySideFiles(from: source, to: temporary, headsMapping: result.report.headsMapping)
        if let fallback = fallbackSideFiles {
            for name in ModelFiles.sideFiles where !copied.contains(name) && FileManager.default.fileExists(atPath: fallback + "/" + name) {
                try FileManager.default.copyItem(atPath: fallback + "/" + name, toPath: temporary + "/" + name)
            }
        }
        if let config { try AtomicFile.write(config, to: temporary + "/config.json") }
        try AtomicFile.write(try result.report.jsonData(), to: temporary + "/merge-report.json")
        let tempFD = open(temporary, O_RDONLY | O_DIRECTORY)
        if tempFD >= 0 { fsync(tempFD); close(tempFD) }

        if FileManager.default.fileExists(atPath: target.path) {
            let old = parent + "/." + target.lastPathComponent + ".old-\(getpid())"
            try? FileManager.default.removeItem(atPath: old)
            try FileManager.default.moveItem(atPath: target.path, toPath: old)
            try FileManager.default.moveItem(atPath: temporary, toPath: target.path)
            try? FileManager.default.removeItem(atPath: old)
        } else {
            try FileManager.default.moveItem(atPath: temporary, toPath: target.path)
        }
        done = true
        try? AtomicFile.syncDirectory(parent)
    }
}
