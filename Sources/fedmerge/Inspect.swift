// `fedmerge inspect`: what is inside a model directory or a safetensors file (single or
// sharded) — tensors with dtypes, shapes and sizes, metadata, the SHA-256 fingerprint that
// admission compares, and for statistics which linears carry which statistic and whether each
// Gram is finite and symmetric — as text or JSON, without Python.

import ArgumentParser
import Foundation
import LinAlg
import Protocol
import SafeTensors

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the tensors, metadata, fingerprint and statistics of a model directory or safetensors file.",
        discussion: """
        PATH is a model directory (its weights, single or sharded, and its stats.safetensors when \
        present), a .safetensors file, or a model.safetensors.index.json.
          fedmerge inspect out/round-1/regmean
          fedmerge inspect workdir/prepared/stats.safetensors --json
        """
    )

    @Argument(help: "Model directory, .safetensors file, or *.safetensors.index.json.") var path: String
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw SafeTensorsError.cannotOpen(path: path, reason: "no such file or directory")
        }
        var report: [String: Any] = ["path": path]
        var sections: [(title: String, checkpoint: SafeTensorsCheckpoint)] = []
        if isDirectory.boolValue {
            sections.append(("weights", try SafeTensorsCheckpoint(directory: path)))
            let stats = path + "/stats.safetensors"
            if FileManager.default.fileExists(atPath: stats) { sections.append(("statistics", try SafeTensorsCheckpoint(path: stats))) }
            // Admission's fingerprint is over config.json ‖ model.safetensors; a sharded model has none.
            let single = FileManager.default.fileExists(atPath: path + "/config.json") && FileManager.default.fileExists(atPath: path + "/model.safetensors")
            report["fingerprint"] = single ? try ModelFingerprint.of(directory: path) : NSNull()
        } else {
            sections.append(("file", try SafeTensorsCheckpoint(path: path)))
        }
        for (title, checkpoint) in sections { report[title] = try Self.describe(checkpoint) }
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(Self.text(report, sections: sections.map(\.title)))
        }
    }

    /// Files, tensors, metadata and (when present) the statistics of one checkpoint.
    static func describe(_ checkpoint: SafeTensorsCheckpoint) throws -> [String: Any] {
        let tensors = checkpoint.names.map { name -> [String: Any] in
            let e = checkpoint.entry(name)!
            return ["name": name, "dtype": e.dtype.rawValue, "shape": e.shape, "bytes": e.dataRange.count,
                    "file": (checkpoint.file(containing: name)!.path as NSString).lastPathComponent]
        }
        var out: [String: Any] = [
            "files": checkpoint.files.map(\.path), "tensors": tensors, "metadata": checkpoint.metadata,
            "tensor_count": tensors.count, "bytes": tensors.reduce(0) { $0 + ($1["bytes"] as! Int) },
            "parameters": checkpoint.names.reduce(0) { $0 + checkpoint.entry($1)!.elementCount },
        ]
        if let index = checkpoint.indexPath { out["index"] = index }
        let statistics = try Self.statistics(checkpoint)
        if !statistics.isEmpty { out["statistics"] = statistics }
        return out
    }

    /// Per linear (a weight's name without `.weight`): its Gram (rows, finite, symmetric) or
    /// the linear whose Gram it shares, its Fisher diagonals and its K-FAC output factor.
    static func statistics(_ checkpoint: SafeTensorsCheckpoint) throws -> [String: [String: Any]] {
        let metadata = checkpoint.metadata
        var linears: [String: [String: Any]] = [:]
        for name in checkpoint.names {
            if name.hasSuffix(".gram") {
                let linear = String(name.dropLast(5))
                let g = try checkpoint.file(containing: name)!.doubleTensor(name)
                var gram: [String: Any] = ["shape": g.shape, "finite": g.storage.allSatisfy(\.isFinite)]
                gram["num_rows"] = metadata[name + ".num_rows"].flatMap(Int.init) ?? NSNull()
                if g.shape.count == 2 && g.shape[0] == g.shape[1] {
                    let d = g.shape[0]
                    var asymmetry = 0.0, largest = 0.0
                    for i in 0..<d { for j in 0..<d {
                        asymmetry = max(asymmetry, abs(g.storage[i * d + j] - g.storage[j * d + i]))
                        largest = max(largest, abs(g.storage[i * d + j]))
                    } }
                    // fp32 sums written from one symmetric accumulator are exactly symmetric; allow
                    // rounding in a file written by another tool.
                    gram["max_asymmetry"] = asymmetry.isFinite ? asymmetry : NSNull()
                    gram["symmetric"] = asymmetry <= 1e-6 * largest
                } else {
                    gram["symmetric"] = false
                }
                linears[linear, default: [:]]["gram"] = gram
            } else if name.hasSuffix(".fisher") {
                let parameter = String(name.dropLast(7))
                let linear = parameter.hasSuffix(".weight") ? String(parameter.dropLast(7)) : parameter.hasSuffix(".bias") ? String(parameter.dropLast(5)) : parameter
                linears[linear, default: [:]]["fisher", default: [String]()] = ((linears[linear]?["fisher"] as? [String]) ?? []) + [parameter]
            } else if name.hasSuffix(".kfac_out") {
                linears[String(name.dropLast(9)), default: [:]]["kfac_out"] = ["shape": checkpoint.entry(name)!.shape]
            }
        }
        for (key, other) in metadata where key.hasSuffix(".gram.same_as") {
            let linear = String(key.dropLast(13))
            linears[linear, default: [:]]["gram"] = ["same_as": other, "num_rows": metadata[linear + ".gram.num_rows"].flatMap(Int.init).map { $0 as Any } ?? NSNull()]
        }
        return linears
    }

    static func text(_ report: [String: Any], sections: [String]) -> String {
        var out = "path \(report["path"]!)\n"
        if let fingerprint = report["fingerprint"] {
            out += "fingerprint (SHA-256 of config.json ‖ model.safetensors, compared at admission): "
            out += (fingerprint as? String) ?? "none (sharded weights: admission needs one model.safetensors)"
            out += "\n"
        }
        for title in sections {
            let s = report[title] as! [String: Any]
            out += "\n[\(title)] \((s["files"] as! [String]).joined(separator: ", "))\n"
            out += "\(s["tensor_count"]!) tensors, \(s["parameters"]!) values, \(s["bytes"]!) bytes\n"
            let metadata = s["metadata"] as! [String: String]
            if !metadata.isEmpty {
                out += "metadata:\n"
                for key in metadata.keys.sorted() { out += "  \(key) = \(metadata[key]!)\n" }
            }
            out += "tensors:\n"
            for t in s["tensors"] as! [[String: Any]] {
                out += "  \(t["name"]!)  \(t["dtype"]!)  \((t["shape"] as! [Int]).map(String.init).joined(separator: "×"))  \(t["bytes"]!) B\n"
            }
            if let statistics = s["statistics"] as? [String: [String: Any]] {
                out += "statistics per linear:\n"
                for linear in statistics.keys.sorted() {
                    let l = statistics[linear]!
                    var parts: [String] = []
                    if let g = l["gram"] as? [String: Any] {
                        if let other = g["same_as"] { parts.append("gram same as \(other)") } else {
                            parts.append("gram \((g["shape"] as! [Int]).map(String.init).joined(separator: "×")), \(g["num_rows"] is NSNull ? "num_rows missing" : "\(g["num_rows"]!) rows"), "
                                         + ((g["finite"] as! Bool) ? "finite" : "NOT FINITE") + ", " + ((g["symmetric"] as! Bool) ? "symmetric" : "NOT SYMMETRIC"))
                        }
                    }
                    if let f = l["fisher"] as? [String] { parts.append("fisher (\(f.count) parameters)") }
                    if l["kfac_out"] != nil { parts.append("kfac_out") }
                    out += "  \(linear): \(parts.joined(separator: "; "))\n"
                }
            }
        }
        return out
    }
}
