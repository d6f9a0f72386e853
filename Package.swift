// swift-tools-version:6.0
// FedMerge: one-shot federated merging of fine-tuned language models (RegMean and friends).
// Module layout and dependency rules: ../shared/DESIGN.md §2 (and the README's table). Arrows point down only.
import PackageDescription

let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")

let package = Package(
    name: "FedMerge",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "fedmerge", targets: ["fedmerge"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // System libraries (Debian packages named in `providers`; .ci/run installs them).
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]),
        .systemLibrary(name: "CZMQ", path: "Sources/CZMQ", pkgConfig: "libzmq",
                       providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "openssl",
                       providers: [.apt(["libssl-dev"])]),

        // Foundations.
        .target(name: "LinAlg", dependencies: ["CBLAS"]),
        .target(name: "AtomicIO"),
        // Every name both daemons (and the writers and readers of statistics) spell: a leaf.
        .target(name: "RoundContract"),
        .target(name: "SafeTensors", dependencies: ["LinAlg", "AtomicIO"]),
        .target(name: "Console"),
        .target(name: "ConfigTree"),
        .target(name: "DaemonSupport", dependencies: ["ConfigTree", "Protocol", .product(name: "Yams", package: "Yams"), logging]),

        // The libraries the daemons stand on.
        .target(name: "Model", dependencies: ["RoundContract", "LinAlg", "SafeTensors", "AtomicIO", "Console"]),
        .target(name: "Merge", dependencies: ["RoundContract", "LinAlg", "ConfigTree"]),
        .target(name: "MergeIO", dependencies: ["RoundContract", "Merge", "SafeTensors", "AtomicIO", "LinAlg"]),
        // Permutation alignment of models from different initialisations (DESIGN.md §9).
        .target(name: "Alignment", dependencies: ["RoundContract", "LinAlg", "Model", "Merge", "MergeIO", "SafeTensors", "AtomicIO"]),
        // Owners of OpenSSL objects, PEM and common-name readers, the error drain: Protocol's and SecureSum's one copy.
        .target(name: "OpenSSLSupport", dependencies: ["COpenSSL"]),
        .target(name: "Protocol", dependencies: ["RoundContract", "CZMQ", "COpenSSL", "OpenSSLSupport", "AtomicIO", logging]),
        // Masked summation (X25519 + HKDF + AES-CTR masks, int64 fixed point): agents' sums without their terms.
        .target(name: "SecureSum", dependencies: ["COpenSSL", "OpenSSLSupport", "RoundContract"]),
        // libFuzzer entry for the wire decoder, the chunk receiver and the secure-sum key check (scripts/fuzz-protocol.sh);
        // a plain build is a replayer of saved inputs.
        .executableTarget(name: "ProtocolFuzz", dependencies: ["Protocol", "SecureSum", logging]),

        // The daemons: thin state machines over the libraries.
        .target(name: "Agent", dependencies: ["Model", "Merge", "MergeIO", "SecureSum", "Protocol", "SafeTensors", "AtomicIO", "DaemonSupport", "LinAlg", logging]),
        .target(name: "Aggregator", dependencies: ["Alignment", "Model", "Merge", "MergeIO", "SecureSum", "Protocol", "SafeTensors", "AtomicIO", "DaemonSupport", "LinAlg", logging]),

        // The paper-style evaluation runner (`fedmerge experiment`): drives the daemons as processes.
        // The paper's evaluation (`fedmerge experiment`): drives real daemons, scores the models.
        .target(name: "Experiment", dependencies: ["Agent", "Model", "Merge", "MergeIO", "DaemonSupport", "LinAlg", "AtomicIO", "SafeTensors", "RoundContract", "Protocol"]),

        .executableTarget(name: "fedmerge", dependencies: [
            "LinAlg", "AtomicIO", "SafeTensors", "Model", "Merge", "MergeIO", "Protocol", "Agent", "Aggregator", "DaemonSupport",
            "Experiment", "Console", "Alignment",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            logging,
            .product(name: "Yams", package: "Yams"),
        ]),

        .testTarget(name: "LinAlgTests", dependencies: ["LinAlg"]),
        .testTarget(name: "RoundContractTests", dependencies: ["RoundContract"]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors", "LinAlg"]),
        .testTarget(name: "ConsoleTests", dependencies: ["Console"]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "LinAlg", "SafeTensors"]),
        .testTarget(name: "MergeTests", dependencies: ["Merge", "MergeIO", "LinAlg", "SecureSum"]),
        .testTarget(name: "SecureSumTests", dependencies: ["SecureSum", "Protocol", "RoundContract"]),
        .testTarget(name: "AlignmentTests", dependencies: ["Alignment", "Model", "Merge", "LinAlg", "RoundContract"]),
        .testTarget(name: "ProtocolTests", dependencies: ["Protocol", "AtomicIO", "CZMQ", "COpenSSL"]),
        .testTarget(name: "fedmergeTests", dependencies: ["fedmerge", "Alignment", "Model", "Merge", "DaemonSupport", "SafeTensors", "LinAlg"]),
        .testTarget(name: "AgentTests", dependencies: ["Agent", "Model", "Protocol", "SafeTensors", "LinAlg", logging]),
        .testTarget(name: "AggregatorTests", dependencies: ["Aggregator", "Merge", "SecureSum", "Protocol", "DaemonSupport", logging]),
        .testTarget(name: "ExperimentTests", dependencies: ["Experiment", "Model", "DaemonSupport", "LinAlg", "SafeTensors"]),
        .testTarget(name: "EndToEndTests", dependencies: ["fedmerge", "Alignment", "Model", "Merge", "MergeIO", "SecureSum", "Protocol", "SafeTensors", "LinAlg", "Experiment"]),
    ]
)
