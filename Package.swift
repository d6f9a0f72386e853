// swift-tools-version:6.0
// FedMerge: one-shot federated merging of fine-tuned language models (RegMean and friends).
// Module layout and dependency rules: ../shared/DESIGN.md §2. Arrows point down only.
import PackageDescription

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

        .target(name: "LinAlg", dependencies: ["CBLAS"]),
        .target(name: "SafeTensors", dependencies: ["LinAlg"]),
        .target(name: "Merge", dependencies: ["LinAlg"]),
        .target(name: "MergeIO", dependencies: ["Merge", "SafeTensors", "LinAlg"]),
        .target(name: "DaemonSupport", dependencies: [
            .product(name: "Yams", package: "Yams"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Agent", dependencies: [
            "Protocol", "SafeTensors", "DaemonSupport", "LinAlg",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Aggregator", dependencies: [
            "Merge", "MergeIO", "Protocol", "SafeTensors", "DaemonSupport", "LinAlg",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Protocol", dependencies: [
            "CZMQ", "COpenSSL",
            .product(name: "Logging", package: "swift-log"),
        ]),

        .executableTarget(name: "fedmerge", dependencies: [
            "LinAlg",
            "Merge",
            "MergeIO",
            "Aggregator",
            "Agent",
            "DaemonSupport",
            "SafeTensors",
            "Protocol",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Yams", package: "Yams"),
        ]),

        .testTarget(name: "LinAlgTests", dependencies: ["LinAlg"]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors", "LinAlg"]),
        .testTarget(name: "MergeTests", dependencies: ["Merge", "LinAlg"]),
        .testTarget(name: "ProtocolTests", dependencies: ["Protocol"]),
        .testTarget(name: "fedmergeTests", dependencies: ["fedmerge", "SafeTensors", "LinAlg"]),
    ]
)
