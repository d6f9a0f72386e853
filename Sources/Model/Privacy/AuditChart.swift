// audit.svg, written by `fedmerge audit`, the privacy sweep and an agent's self-audit: the
// layer-0 audit's top recovered tokens as bars.

import Foundation

/// audit.svg: the top recovered tokens of layer 0 as bars (recovered count, and the true count
/// as a tick when the data was given).
public enum AuditChart {
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    public static func svg(_ r: StatisticsAuditReport) -> String {
        let tokens = r.layer0.top
        let rowHeight = 16.0, left = 140.0, width = 420.0
        let height = 60 + rowHeight * Double(tokens.count)
        let largest = max(tokens.map { max($0.recovered ?? 0, Double($0.truth ?? 0)) }.max() ?? 1, 1)
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(left + width + 40))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"11\">\n"
        var title = "Layer-0 Gram audit: top recovered tokens"
        if let score = r.layer0.score { title += String(format: " (recall@%d %.2f)", score.distinct, score.recallAtDistinct) }
        if let n = r.noise { title += String(format: ", ε = %.3g", n.epsilon) }
        s += "<text x=\"10\" y=\"18\" font-size=\"13\">\(escape(title))</text>\n"
        s += "<text x=\"10\" y=\"34\" fill=\"#555\">bars: recovered count; black tick: true count</text>\n"
        for (i, t) in tokens.enumerated() {
            let y = 44 + rowHeight * Double(i)
            let w = width * (t.recovered ?? 0) / largest
            s += "<text x=\"\(left - 6)\" y=\"\(y + 11)\" text-anchor=\"end\">\(escape(t.token))</text>\n"
            s += "<rect x=\"\(left)\" y=\"\(y + 2)\" width=\"\(String(format: "%.1f", w))\" height=\"\(rowHeight - 4)\" fill=\"#4a7ab5\"/>\n"
            if let truth = t.truth {
                let x = left + width * Double(truth) / largest
                s += "<rect x=\"\(String(format: "%.1f", x - 1))\" y=\"\(y)\" width=\"2\" height=\"\(rowHeight)\" fill=\"#000\"/>\n"
            }
        }
        return s + "</svg>\n"
    }
}
