// The `fedmerge` executable: one ParsableCommand per subcommand, registered here.

import ArgumentParser
import LinAlg

@main
enum Entry {
    static func main() {
        OpenBLASCore.restartWithRecommendedKernelsIfNeeded()
        FedMerge.main()
    }
}

struct FedMerge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fedmerge",
        abstract: "Federated one-shot merging of fine-tuned language models (RegMean and friends).",
        discussion: """
        Agents fine-tune a shared pretrained model next to their private data and send only
        weights and statistics; the aggregator merges them in one round. Start with the
        README, or `fedmerge help <subcommand>`.
        """,
        version: "0.1.0",
        subcommands: [
            AgentCommand.self,
            AggregatorCommand.self,
            StatusCommand.self,
            Bench.self,
            DataCommand.self,
            MergeCommand.self,
            AlignCommand.self,
            BarrierCommand.self,
            PretrainCommand.self,
            Finetune.self,
            Stats.self,
            Embed.self,
            Predict.self,
            Evaluate.self,
            Inspect.self,
            Certs.self,
            ExperimentCommand.self,
            AuditCommand.self,
            PrivacySweepCommand.self,
        ]
    )
}
