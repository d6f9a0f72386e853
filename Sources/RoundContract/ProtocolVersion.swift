// The wire protocol's version: one number both daemons and the framing agree on. A HELLO
// with another version is refused by name; a frame with another version is not decoded.

public enum ProtocolVersion {
    /// Bump when a message changes incompatibly; never reuse a number.
    public static let current: UInt16 = 1
}
