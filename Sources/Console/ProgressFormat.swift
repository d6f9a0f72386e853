// ProgressFormat: the pure text of a progress report — durations, rates, ETA, the bar line and the log line.

public enum ProgressUnit: Sendable, Equatable {
    /// Counted things (optimizer steps, batches, examples), shown as "it/s".
    case steps
    /// Bytes, shown as decimal kB/MB/GB and kB/s … GB/s.
    case bytes
}

public enum ProgressFormat {
    /// "m:ss" below an hour, "h:mm:ss" above; "--:--" when unknown (nil, NaN, infinite, negative).
    public static func duration(_ seconds: Double?) -> String {
        guard let seconds, seconds.isFinite, seconds >= 0 else { return "--:--" }
        let total = Int(seconds.rounded())
        let h = total / 3600, m = (total % 3600) / 60, s = total % 60
        func two(_ x: Int) -> String { x < 10 ? "0\(x)" : "\(x)" }
        return h > 0 ? "\(h):\(two(m)):\(two(s))" : "\(m):\(two(s))"
    }

    /// Seconds left, extrapolating the average rate so far; nil before anything is done.
    public static func eta(completed: Int, total: Int, elapsed: Double) -> Double? {
        guard completed > 0, elapsed > 0, total >= completed else { return nil }
        return Double(total - completed) * elapsed / Double(completed)
    }

    /// Steps: "12.3 it/s", or "4.20 s/it" when slower than one per second. Bytes: "45.6 MB/s".
    public static func rate(_ perSecond: Double, unit: ProgressUnit) -> String {
        guard perSecond.isFinite, perSecond > 0 else { return unit == .bytes ? "-- B/s" : "-- it/s" }
        switch unit {
        case .steps:
            return perSecond >= 1 ? "\(fixed(perSecond, 1)) it/s" : "\(fixed(1 / perSecond, 2)) s/it"
        case .bytes:
            return "\(amount(perSecond, unit: .bytes))/s"
        }
    }

    /// A count in its unit: "37" for steps; "512 B", "1.5 kB", "45.6 MB", "1.23 GB" for bytes.
    public static func amount(_ value: Double, unit: ProgressUnit) -> String {
        switch unit {
        case .steps:
            return "\(Int(value))"
        case .bytes:
            let units = ["B", "kB", "MB", "GB", "TB"]
            var scaled = value, index = 0
            while scaled >= 1000 && index < units.count - 1 { scaled /= 1000; index += 1 }
            if index == 0 { return "\(Int(value)) B" }
            return "\(fixed(scaled, scaled < 10 ? 2 : 1)) \(units[index])"
        }
    }

    /// "label  37% |#######-------------| 37/100  12.3 it/s  ETA 0:05  loss=0.431", cut to `width` columns.
    public static func barLine(label: String, completed: Int, total: Int, elapsed: Double, unit: ProgressUnit,
                               metrics: [(String, String)], barWidth: Int = 20, width: Int = 120) -> String {
        let fraction = total > 0 ? min(1, max(0, Double(completed) / Double(total))) : 0
        let filled = Int((fraction * Double(barWidth)).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: barWidth - filled)
        var line = "\(label) \(percent(fraction)) |\(bar)| \(counts(completed, total, unit))"
        line += "  " + rate(elapsed > 0 ? Double(completed) / elapsed : 0, unit: unit)
        line += "  ETA " + duration(eta(completed: completed, total: total, elapsed: elapsed))
        for (name, value) in metrics { line += "  \(name)=\(value)" }
        return line.count > width ? String(line.prefix(max(0, width - 1))) + "…" : line
    }

    /// "label: 37/100 (37%), 12.3 it/s, elapsed 0:03, ETA 0:05, loss=0.431" — for logs.
    public static func logLine(label: String, completed: Int, total: Int, elapsed: Double, unit: ProgressUnit,
                               metrics: [(String, String)]) -> String {
        let fraction = total > 0 ? min(1, max(0, Double(completed) / Double(total))) : 0
        var line = "\(label): \(counts(completed, total, unit)) (\(percent(fraction).trimmingLeadingSpaces()))"
        line += ", " + rate(elapsed > 0 ? Double(completed) / elapsed : 0, unit: unit)
        line += ", elapsed " + duration(elapsed)
        if completed < total { line += ", ETA " + duration(eta(completed: completed, total: total, elapsed: elapsed)) }
        for (name, value) in metrics { line += ", \(name)=\(value)" }
        return line
    }

    /// `value` with exactly `digits` decimals (no Foundation formatting, so the same everywhere).
    public static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "\(value)" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let whole = Int(scaled / scale)
        let fractional = Int(scaled - Double(whole) * scale)
        let sign = value < 0 && scaled > 0 ? "-" : ""
        guard digits > 0 else { return sign + "\(whole)" }
        let digitsText = String(fractional)
        return sign + "\(whole)." + String(repeating: "0", count: digits - digitsText.count) + digitsText
    }

    private static func percent(_ fraction: Double) -> String {
        let p = Int((fraction * 100).rounded(.down))
        return (p < 10 ? "  " : p < 100 ? " " : "") + "\(p)%"
    }

    private static func counts(_ completed: Int, _ total: Int, _ unit: ProgressUnit) -> String {
        switch unit {
        case .steps: return "\(completed)/\(total)"
        case .bytes: return "\(amount(Double(completed), unit: .bytes))/\(amount(Double(total), unit: .bytes))"
        }
    }
}

extension String {
    fileprivate func trimmingLeadingSpaces() -> String { String(drop { $0 == " " }) }
}
