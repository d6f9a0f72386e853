// A whole federation in a temporary directory, for end-to-end tests: a CA and certificates,
// a tiny random BERT-shaped base model (2 layers, hidden 32), synthetic labelled text per
// agent, YAML configs, and the real `fedmerge` binary started as separate processes.

import Foundation
import LinAlg
import Model
import Protocol
import SafeTensors
import XCTest

final class Federation {
    let root: String
    let binary: String
    private(set) var processes: [String: Process] = [:]
    let port: Int

    init(name: String) throws {
        root = NSTemporaryDirectory() + "fedmerge-e2e-\(name)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        binary = try Self.findBinary()
        port = try Self.freePort()
    }

    deinit { stopAll() }

    /// A federation with certificates, the tiny base model, and data and a config per agent
    /// (domains in turn from `domains`, data seeds from `seed`); `alsoCertified` get a
    /// certificate only (e.g. the tests' rogue members).
    static func make(_ name: String, agents: [String], alsoCertified: [String] = [], domains: [String] = ["alpha", "beta", "gamma", "delta"],
                     seed: UInt64 = 100) throws -> Federation {
        let f = try Federation(name: name)
        try f.makeCertificates(agents: agents + alsoCertified)
        try f.makeBaseModel()
        for (i, agent) in agents.enumerated() {
            try f.makeData(agent: agent, domain: domains[i % domains.count], seed: seed + UInt64(i))
            try f.writeAgentConfig(agent)
        }
        return f
    }

    func cleanUp() {
        stopAll()
        try? FileManager.default.removeItem(atPath: root)
    }

    static func findBinary() throws -> String {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var candidates = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(), Bundle.main.bundleURL]
        candidates.append(repo.appendingPathComponent(".build/debug"))
        for dir in candidates {
            for path in [dir.appendingPathComponent("fedmerge").path, dir.deletingLastPathComponent().appendingPathComponent("fedmerge").path]
            where FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw XCTSkip("fedmerge binary not found; run `swift build` first")
    }

    /// scripts/netlab.sh of this checkout.
    static var netlabScript: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/netlab.sh").path
    }

    /// A TCP port free right now on 127.0.0.1 (bound and released).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard bound else { throw XCTSkip("cannot bind a loopback port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    // MARK: certificates

    /// The federation CA in certs/, a server certificate "aggregator", and one per agent.
    func makeCertificates(agents: [String]) throws {
        let ca = try CertificateAuthority.initialize(directory: root + "/certs")
        _ = try ca.issue(name: "aggregator", server: true)
        for agent in agents { _ = try ca.issue(name: agent, server: false) }
    }

    /// Certificates for `agents` signed by a different CA, in foreign-certs/.
    func makeForeignCertificates(agents: [String]) throws {
        let ca = try CertificateAuthority.initialize(directory: root + "/foreign-certs")
        for agent in agents { _ = try ca.issue(name: agent, server: false) }
    }

    // MARK: model and data

    static let positive = ["good", "great", "fine", "happy", "love", "nice", "excellent", "best", "wonderful", "superb"]
    static let negative = ["bad", "awful", "poor", "sad", "hate", "terrible", "worst", "boring", "ugly", "weak"]
    static let domains: [String: [String]] = [
        "alpha": ["movie", "film", "actor", "scene", "plot", "story"],
        "beta": ["phone", "battery", "screen", "price", "delivery", "seller"],
        "gamma": ["game", "team", "player", "match", "coach", "season"],
        "delta": ["food", "table", "waiter", "menu", "dish", "wine"],
    ]
    static let filler = ["the", "a", "was", "is", "very", "really", "quite", "and", "but", "this", "it", "so"]

    /// vocab.txt, and a seeded random base model (2 layers, hidden 32, 2 heads) in base/.
    func makeBaseModel() throws {
        let words = Self.positive + Self.negative + Self.domains.values.flatMap { $0 }.sorted() + Self.filler
        let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
        let dir = root + "/base"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try (vocab.joined(separator: "\n") + "\n").write(toFile: dir + "/vocab.txt", atomically: true, encoding: .utf8)
        let config = BertConfig(vocabSize: vocab.count, hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 2,
                                intermediateSize: 64, maxPositionEmbeddings: 64)
        try ModelDirectory.save(BertEncoder(config: config, seed: 7), to: dir, tokenizerSource: dir)
    }

    /// train.csv and test.csv for `agent`: sentiment carried by positive/negative words among
    /// the agent's domain words (label noise 5%).
    func makeData(agent: String, domain: String, trainRows: Int = 240, testRows: Int = 80, seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let domainWords = Self.domains[domain]!
        func sentence() -> (String, String) {
            let positive = Bool.random(using: &rng)
            var words: [String] = []
            for _ in 0..<Int.random(in: 4...9, using: &rng) {
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: words.append(domainWords.randomElement(using: &rng)!)
                case 1: words.append((positive ? Self.positive : Self.negative).randomElement(using: &rng)!)
                default: words.append(Self.filler.randomElement(using: &rng)!)
                }
            }
            let noisy = Double.random(in: 0..<1, using: &rng) < 0.05
            return (words.joined(separator: " "), positive != noisy ? "positive" : "negative")
        }
        let dir = root + "/data/" + agent
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (file, rows) in [("train.csv", trainRows), ("test.csv", testRows)] {
            var text = "text,label\n"
            for _ in 0..<rows { let (s, l) = sentence(); text += "\(s),\(l)\n" }
            try text.write(toFile: dir + "/" + file, atomically: true, encoding: .utf8)
        }
    }

    // MARK: configs

    /// The aggregator's address in the configs: loopback, or its host's address in the netlab.
    var host = "127.0.0.1"
    var endpoint: String { "tcp://\(host):\(port)" }

    @discardableResult
    func writeAggregatorConfig(subset: [String], allow: [String], methods: String, minAgents: Int? = nil,
                               deadline: Int = 600, evalTimeout: Int = 120, name: String = "aggregator.yaml") throws -> String {
        let path = root + "/" + name
        try """
        listen: \(endpoint)
        tls: {ca: certs/ca.pem, cert: certs/aggregator.pem, key: certs/aggregator.key}
        allow: [\(allow.joined(separator: ", "))]
        spool: spool
        output: output
        round:
          id: 1
          base_model: base
          subset: [\(subset.joined(separator: ", "))]
          min_agents: \(minAgents ?? subset.count)
          deadline: \(deadline)
          eval_timeout: \(evalTimeout)
          methods:
        \(methods)
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static let threeMethods = """
            - {merge_method: regmean, parameters: {alpha: 0.9}}
            - {merge_method: fisher}
            - {merge_method: average}
    """

    /// The three above and MaTS with the K-FAC objective (agents must send kfac_out).
    static let fourMethods = threeMethods + """

            - {merge_method: mats, parameters: {objective: kfac, init: regmean}}
    """

    @discardableResult
    func writeAgentConfig(_ agent: String, certificates: String = "certs", data: String? = nil) throws -> String {
        let path = root + "/agent-\(agent).yaml"
        try """
        name: \(agent)
        aggregator: \(endpoint)
        tls: {ca: \(certificates)/ca.pem, cert: \(certificates)/\(agent).pem, key: \(certificates)/\(agent).key}
        base_model: base
        data: {train: data/\(data ?? agent)/train.csv, test: data/\(data ?? agent)/test.csv, labels: [negative, positive]}
        train: {epochs: 2, lr: 1.0e-3, batch_size: 16, max_len: 16, seed: 3}
        stats: {gram_batches: 8, fisher_examples: 64}
        workdir: work/\(agent)
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    // MARK: processes

    /// Starts `fedmerge ARGS` in the federation root with output to logs/NAME.log; with
    /// `netlabHost`, inside that host of scripts/netlab.sh (which execs, so the pid is fedmerge's).
    @discardableResult
    func start(_ name: String, _ arguments: [String], netlabHost: String? = nil) throws -> Process {
        try FileManager.default.createDirectory(atPath: root + "/logs", withIntermediateDirectories: true)
        let log = root + "/logs/\(name).log"
        XCTAssertTrue(FileManager.default.createFile(atPath: log, contents: nil), "cannot create \(log)")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        let process = Process()
        if let netlabHost {
            process.executableURL = URL(fileURLWithPath: Self.netlabScript)
            process.arguments = ["exec", netlabHost, binary] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments
        }
        process.currentDirectoryURL = URL(fileURLWithPath: root)
        var environment = ProcessInfo.processInfo.environment
        environment["OPENBLAS_NUM_THREADS"] = "1"
        process.environment = environment
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        processes[name] = process
        return process
    }

    func log(_ name: String) -> String {
        (try? String(contentsOfFile: root + "/logs/\(name).log", encoding: .utf8)) ?? ""
    }

    /// Waits for `process` to exit, at most `limit` seconds (a guard against hanging, not a
    /// speed check); returns its exit status, or nil if it was still running.
    func wait(_ name: String, limit: Double = 600) -> Int32? {
        guard let process = processes[name] else { return nil }
        let end = Date().addingTimeInterval(limit)
        while process.isRunning && Date() < end { Thread.sleep(forTimeInterval: 0.1) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Polls `condition` every 0.1 s for at most `limit` seconds.
    func waitUntil(limit: Double = 600, _ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(limit)
        while Date() < end {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return condition()
    }

    func kill(_ name: String, signal: Int32 = SIGKILL) {
        guard let process = processes[name], process.isRunning else { return }
        Foundation.kill(process.processIdentifier, signal)
        process.waitUntilExit()
    }

    func stopAll() {
        for (name, _) in processes { kill(name) }
    }

    /// The directory of `agent`'s stored contribution (`spool/store/<agent>/<fingerprint>/`),
    /// or nil while there is none (or more than one).
    func contributionDirectory(_ agent: String) -> String? {
        let dir = root + "/spool/store/" + agent
        let entries = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { !$0.hasPrefix(".") }
        return entries.count == 1 ? dir + "/" + entries[0] : nil
    }

    /// `contributionDirectory` relative to the federation root (for configs the daemons read).
    func relativeContribution(_ agent: String) -> String {
        String((contributionDirectory(agent) ?? "missing").dropFirst(root.count + 1))
    }

    /// `fedmerge merge` of the stored contributions of `agents` into offline/NAME (the
    /// independent path every daemon merge is compared with).
    func offlineMerge(_ name: String, method: String, parameters: String, agents: [String]) throws {
        try FileManager.default.createDirectory(atPath: root + "/offline", withIntermediateDirectories: true)
        try ("merge_method: \(method)\nmodels:\n" + agents.map { "  - {model: \(relativeContribution($0)), name: \($0)}\n" }.joined() + "parameters: \(parameters)\n")
            .write(toFile: root + "/offline/\(name).yaml", atomically: true, encoding: .utf8)
        try start("offline-\(name)", ["merge", "offline/\(name).yaml", "--out", "offline/\(name)"])
        XCTAssertEqual(wait("offline-\(name)", limit: 120), 0, log("offline-\(name)"))
    }

    /// The largest |difference| between two safetensors files' fp32 tensors (their names must agree).
    static func maxDifference(_ a: String, _ b: String) throws -> Double {
        let x = try SafeTensorsFile(path: a), y = try SafeTensorsFile(path: b)
        XCTAssertEqual(Set(x.names), Set(y.names))
        var worst = 0.0
        for name in y.names where y.entry(name)!.dtype == .F32 {
            worst = max(worst, try x.floatTensor(name).maxAbsDifference(try y.floatTensor(name)))
        }
        return worst
    }

    /// True when the aggregator's store holds every file of `agent`'s upload.
    func uploadComplete(_ agent: String, files: [String] = ["config.json", "model.safetensors", "stats.safetensors"]) -> Bool {
        guard let dir = contributionDirectory(agent) else { return false }
        return files.allSatisfy { FileManager.default.fileExists(atPath: dir + "/" + $0) }
    }

    func logs() -> String {
        processes.keys.sorted().map { "=== \($0)\n" + log($0).suffix(4000) }.joined(separator: "\n")
    }
}

/// Base of the end-to-end tests that run one federation: prints its logs when a test failed,
/// then stops its processes and removes its directory.
class FederationTestCase: XCTestCase {
    var federation: Federation!

    override func tearDown() {
        if let federation, testRun?.failureCount ?? 0 > 0 { print(federation.logs()) }
        federation?.cleanUp()
        super.tearDown()
    }
}
