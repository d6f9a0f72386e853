// BaseLookup: finds a fine-tuned tensor's counterpart in the pretrained base. Fine-tuned
// models prefix the encoder (`bert.encoder…`) while the base may not (`encoder…`), so the
// rule is: the name itself, else the name without its first dotted component.

import LinAlg

enum BaseLookup {
    /// The base tensor for model tensor `name`, or nil when the base has none (e.g. a new head).
    /// A counterpart with a different shape is an error naming both shapes.
    static func counterpart(of name: String, shape: [Int], in base: NamedTensors) throws -> Tensor<Float>? {
        guard let (candidate, t) = find(name, in: base) else { return nil }
        guard t.shape == shape else {
            throw MergeError.shapeMismatch(model: "base", tensor: candidate, expected: shape, actual: t.shape)
        }
        return t
    }

    /// The base's name and tensor for model tensor `name` by the rule above, whatever its shape.
    static func find(_ name: String, in base: NamedTensors) -> (name: String, tensor: Tensor<Float>)? {
        if let t = base[name] { return (name, t) }
        if let dot = name.firstIndex(of: ".") {
            let stripped = String(name[name.index(after: dot)...])
            if let t = base[stripped] { return (stripped, t) }
        }
        return nil
    }
}
