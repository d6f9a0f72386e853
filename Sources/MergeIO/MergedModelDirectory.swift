// Writing a merged model directory (model.safetensors, merge-report.json, the side files of
// one input model) — or any model directory built from tensors, such as an aligned one —
// atomically: built under a temporary sibling name, then renamed into place, so a crash or a
// full disk never leaves a half-written model where a complete one is expected.

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
        try write(tensors: result.tensors, metadata: ["format": "pt", "fedmerge.method": result.report.method], to: directory,
                  sideFilesFrom: source, headsMapping: result.report.headsMapping, fallbackSideFiles: fallbackSideFiles,
                  config: config, files: [("merge-report.json", try result.report.jsonData())])
    }

    /// The same for any model's tensors (an aligned model, say): model.safetensors with
    /// `metadata`, the side files, and `files` (name, contents) written last.
    public static func write(tensors: NamedTensors, metadata: [String: String], to directory: String, sideFilesFrom source: String,
                             headsMapping: [String: String] = [:], fallbackSideFiles: String? = nil, config: Data? = nil,
                             files: [(name: String, data: Data)] = []) throws {
        let target = URL(fileURLWithPath: directory).standardizedFileURL
        let parent = target.deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        let temporary = parent + "/." + target.lastPathComponent + ".partial-\(getpid())"
        try? FileManager.default.removeItem(atPath: temporary)
        try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: false)
        var done = false
        defer { if !done { try? FileManager.default.removeItem(atPath: temporary) } }

        try SafeTensorsWriter.write(tensors: tensors.pairs, metadata: metadata, to: temporary + "/model.safetensors")
        let copied = try ModelFiles.copySideFiles(from: source, to: temporary, headsMapping: headsMapping)
        if let fallback = fallbackSideFiles {
            for name in ModelFiles.sideFiles where !copied.contains(name) && FileManager.default.fileExists(atPath: fallback + "/" + name) {
                try FileManager.default.copyItem(atPath: fallback + "/" + name, toPath: temporary + "/" + name)
            }
        }
        if let config { try AtomicFile.write(config, to: temporary + "/config.json") }
        for (name, data) in files { try AtomicFile.write(data, to: temporary + "/" + name) }
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
