/// Human-readable quantities for flags, as operators write them elsewhere (kubectl, docker).
public enum Quantity {
    /// Bytes: a number with an optional suffix, decimal (K, M, G, T) or binary (Ki, Mi, Gi, Ti);
    /// "256M", "1Gi", "1048576".
    public static func bytes(_ text: String) -> UInt64? {
        let units: [(String, UInt64)] = [
            ("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("Ti", 1 << 40),
            ("K", 1_000), ("M", 1_000_000), ("G", 1_000_000_000), ("T", 1_000_000_000_000),
        ]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            guard let value = UInt64(text.dropLast(suffix.count)) else { return nil }
            let (product, overflow) = value.multipliedReportingOverflow(by: factor)
            return overflow ? nil : product
        }
        return UInt64(text)
    }

    /// CPU in millicores: "500m", "0.5" or "2" (CPUs).
    public static func cpuMillis(_ text: String) -> UInt32? {
        if text.hasSuffix("m") { return UInt32(text.dropLast()) }
        guard let cpus = Double(text), cpus >= 0, cpus * 1000 <= Double(UInt32.max) else { return nil }
        return UInt32((cpus * 1000).rounded())
    }
}
